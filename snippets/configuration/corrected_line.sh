# Run in the folder that holds main.py; tls/ holds the key and the certificate.
export GUNICORN_CMD_ARGS="--bind=0.0.0.0:8443 --workers=3 \
    --worker-class=uvicorn_worker.UvicornWorker \
    --keyfile=tls/key.pem --certfile=tls/cert.pem \
    --max-requests=1000 --max-requests-jitter=100 \
    --access-logfile=-"
gunicorn main:app
