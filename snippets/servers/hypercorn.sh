# --8<-- [start:serve]
hypercorn main:app --workers 2 --bind 0.0.0.0:8000
# --8<-- [end:serve]
# --8<-- [start:recycle]
hypercorn main:app --workers 2 --bind 0.0.0.0:8000 --max-requests 5
# --8<-- [end:recycle]
# --8<-- [start:tls]
hypercorn main:app --workers 2 --bind 0.0.0.0:8443 \
  --keyfile server.key --certfile server.pem
# --8<-- [end:tls]
