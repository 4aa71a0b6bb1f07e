# --8<-- [start:ciphers]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8443 --keyfile tls/key.pem --certfile tls/cert.pem --ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384
# --8<-- [end:ciphers]
# --8<-- [start:tls13-asgi]
gunicorn main:app -c tls13.conf.py --worker-class asgi --bind 0.0.0.0:8443 --keyfile tls/key.pem --certfile tls/cert.pem
# --8<-- [end:tls13-asgi]
# --8<-- [start:tls13-uvicorn-worker]
gunicorn main:app -c tls13.conf.py --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8443 --keyfile tls/key.pem --certfile tls/cert.pem
# --8<-- [end:tls13-uvicorn-worker]
