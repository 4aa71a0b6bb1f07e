uvicorn main:app --host 0.0.0.0 --port 8443 --http zttp --http2 \
  --ssl-keyfile server.key --ssl-certfile server.pem
