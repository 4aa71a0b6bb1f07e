# --8<-- [start:serve]
uvicorn main:app --host 0.0.0.0 --port 8000 --workers 2 --timeout-worker-healthcheck 20
# --8<-- [end:serve]
# --8<-- [start:recycle]
uvicorn main:app --host 0.0.0.0 --port 8000 --workers 2 --limit-max-requests 5
# --8<-- [end:recycle]
# --8<-- [start:tls]
uvicorn main:app --host 0.0.0.0 --port 8443 --workers 2 \
  --ssl-keyfile server.key --ssl-certfile server.pem
# --8<-- [end:tls]
# --8<-- [start:timeout]
uvicorn main:app --host 0.0.0.0 --port 8000 --workers 2 --timeout-worker-healthcheck 5
# --8<-- [end:timeout]
