# --8<-- [start:asgi]
gunicorn main:app --worker-class asgi --bind 0.0.0.0:8000 --access-logfile - --access-logformat '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# --8<-- [end:asgi]
# --8<-- [start:uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000 --access-logfile - --access-logformat '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# --8<-- [end:uvicorn-worker]
