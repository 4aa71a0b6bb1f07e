# --8<-- [start:asgi]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 --statsd-host 127.0.0.1:8125 --access-logfile -
# --8<-- [end:asgi]
# --8<-- [start:asgi-no-access-log]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000 --statsd-host 127.0.0.1:8125
# --8<-- [end:asgi-no-access-log]
# --8<-- [start:uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000 --statsd-host 127.0.0.1:8125 --access-logfile -
# --8<-- [end:uvicorn-worker]
