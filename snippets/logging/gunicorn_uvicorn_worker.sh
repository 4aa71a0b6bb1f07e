# --8<-- [start:default]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json
# --8<-- [end:default]
# --8<-- [start:trust-proxy]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json --forwarded-allow-ips=10.0.0.1
# --8<-- [end:trust-proxy]
# --8<-- [start:access-logformat]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json --access-logformat '%(h)s "%(r)s" %(s)s %(M)sms'
# --8<-- [end:access-logformat]
# --8<-- [start:root-only]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000 --log-config-json logging_root_only.json
# --8<-- [end:root-only]
