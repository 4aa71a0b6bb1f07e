# --8<-- [start:uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --keep-alive 1 --bind 0.0.0.0:8000
# --8<-- [end:uvicorn-worker]
# --8<-- [start:asgi]
gunicorn main:app --worker-class asgi --keep-alive 1 --bind 0.0.0.0:8000
# --8<-- [end:asgi]
# --8<-- [start:uvicorn]
uvicorn main:app --timeout-keep-alive 1 --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn]
