# --8<-- [start:default]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json
# --8<-- [end:default]
# --8<-- [start:conf-file]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 -c gunicorn.conf.py
# --8<-- [end:conf-file]
# --8<-- [start:trust-all]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json --forwarded-allow-ips='*'
# --8<-- [end:trust-all]
# --8<-- [start:access-logformat]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json --access-logformat '%(h)s "%(r)s" %(s)s %(M)sms'
# --8<-- [end:access-logformat]
# --8<-- [start:bare]
gunicorn bare:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 --log-config-json logging.json
# --8<-- [end:bare]
