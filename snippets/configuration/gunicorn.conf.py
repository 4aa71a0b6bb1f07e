# gunicorn.conf.py: Gunicorn reads this file from the directory it starts in.
bind = "0.0.0.0:8000"
workers = 2
worker_class = "uvicorn_worker.UvicornWorker"
