# --8<-- [start:default]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:default]
# --8<-- [start:trust-proxy]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000 --forwarded-allow-ips=10.0.0.1
# --8<-- [end:trust-proxy]
# --8<-- [start:env]
FORWARDED_ALLOW_IPS=10.0.0.1 gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:env]
# --8<-- [start:trust-all]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000 --forwarded-allow-ips='*'
# --8<-- [end:trust-all]
