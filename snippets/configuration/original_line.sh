# The line the notes asked to review, as written; only the key and certificate paths
# point at tls/ here instead of /opt/key/.
export GUNICORN_CMD_ARGS="--bind=0.0.0.0:8443 --workers=3 --worker-class uvicorn.workers.UvicornWorker --keyfile=tls/key.pem --certfile=tls/cert.pem"
gunicorn main:app
