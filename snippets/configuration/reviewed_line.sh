# The line from the notes with every addition its reviewers suggested. Do not use it.
# --8<-- [start:uvicorn-worker]
export GUNICORN_CMD_ARGS="--bind=0.0.0.0:8443 --workers=3 \
    --worker-class uvicorn.workers.UvicornWorker \
    --keyfile=tls/key.pem --certfile=tls/cert.pem \
    --threads=2 --ssl-version=2 \
    --ciphers=ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384 \
    --timeout 120 --max-requests 1000 --access-logfile -"
gunicorn main:app
# --8<-- [end:uvicorn-worker]
# --8<-- [start:asgi]
export GUNICORN_CMD_ARGS="--bind=0.0.0.0:8443 --workers=3 \
    --worker-class asgi \
    --keyfile=tls/key.pem --certfile=tls/cert.pem \
    --threads=2 --ssl-version=2 \
    --ciphers=ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384 \
    --timeout 120 --max-requests 1000 --access-logfile -"
gunicorn main:app
# --8<-- [end:asgi]
