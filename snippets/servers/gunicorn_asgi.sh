# --8<-- [start:serve]
gunicorn main:app --worker-class asgi --workers 2 \
  --bind 0.0.0.0:8000
# --8<-- [end:serve]
# --8<-- [start:recycle]
gunicorn main:app --worker-class asgi --workers 2 \
  --bind 0.0.0.0:8000 --max-requests 5
# --8<-- [end:recycle]
# --8<-- [start:tls]
gunicorn main:app --worker-class asgi --workers 2 \
  --bind 0.0.0.0:8443 --keyfile server.key --certfile server.pem --http-protocols h2,h1
# --8<-- [end:tls]
# --8<-- [start:timeout]
gunicorn main:app --worker-class asgi --workers 2 \
  --bind 0.0.0.0:8000 --timeout 3
# --8<-- [end:timeout]
