# --8<-- [start:gunicorn]
WEB_CONCURRENCY=2 gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:gunicorn]
# --8<-- [start:uvicorn]
WEB_CONCURRENCY=2 uvicorn main:app --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn]
