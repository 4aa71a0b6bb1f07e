gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000 --access-logfile log/access.log --error-logfile log/error.log
