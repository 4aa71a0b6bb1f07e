# --8<-- [start:uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --max-requests 4 --max-requests-jitter 2 --bind 0.0.0.0:8000
# --8<-- [end:uvicorn-worker]
# --8<-- [start:asgi]
gunicorn main:app --worker-class asgi --workers 2 --max-requests 4 --max-requests-jitter 2 --bind 0.0.0.0:8000
# --8<-- [end:asgi]
# --8<-- [start:uvicorn]
uvicorn main:app --workers 2 --limit-max-requests 4 --limit-max-requests-jitter 2 --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn]
# --8<-- [start:uvicorn-single]
uvicorn main:app --limit-max-requests 4 --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn-single]
