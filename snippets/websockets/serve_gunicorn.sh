# --8<-- [start:asgi]
gunicorn main:app --worker-class asgi --workers 2 --timeout 5 --bind 0.0.0.0:8000
# --8<-- [end:asgi]
# --8<-- [start:uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --timeout 5 --bind 0.0.0.0:8000
# --8<-- [end:uvicorn-worker]
