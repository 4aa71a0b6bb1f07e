docker run --rm -p 8443:8443 -v "$PWD/tls:/run/tls:ro" fastapi-app \
  gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8443 \
  --keyfile /run/tls/key.pem --certfile /run/tls/cert.pem --graceful-timeout 20 \
  --no-control-socket
