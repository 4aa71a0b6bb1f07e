# --8<-- [start:tls]
uvicorn main:app --host 0.0.0.0 --port 8443 --http zttp --http2 \
  --ssl-keyfile server.key --ssl-certfile server.pem
# --8<-- [end:tls]
# --8<-- [start:h2c]
uvicorn main:app --host 0.0.0.0 --port 8000 --http zttp --http2
# --8<-- [end:h2c]
# --8<-- [start:no-switch]
uvicorn main:app --host 0.0.0.0 --port 8000 --http2
# --8<-- [end:no-switch]
