# Development only: a file watcher that restarts the server when the code changes.
# --8<-- [start:uvicorn]
uvicorn main:app --reload --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn]
# --8<-- [start:gunicorn-asgi]
gunicorn main:app --worker-class asgi --reload --bind 0.0.0.0:8000
# --8<-- [end:gunicorn-asgi]
# --8<-- [start:gunicorn-uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --reload --bind 0.0.0.0:8000
# --8<-- [end:gunicorn-uvicorn-worker]
