gunicorn bounded:app --worker-class uvicorn_worker.UvicornWorker --workers 1 --bind 0.0.0.0:8000
