# One worker and a 2-second --timeout, so the tests see the heartbeat at work quickly.
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 1 --timeout 2 --bind 0.0.0.0:8000
