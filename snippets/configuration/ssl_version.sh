# Every one of these crash-loops the Uvicorn worker. Do not use --ssl-version.
# --8<-- [start:number]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8443 \
    --keyfile tls/key.pem --certfile tls/cert.pem --ssl-version 2
# --8<-- [end:number]
# --8<-- [start:name]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8443 \
    --keyfile tls/key.pem --certfile tls/cert.pem --ssl-version TLSv1_2
# --8<-- [end:name]
# --8<-- [start:env]
export GUNICORN_CMD_ARGS="--ssl-version=TLSv1_2"
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8443 \
    --keyfile tls/key.pem --certfile tls/cert.pem
# --8<-- [end:env]
