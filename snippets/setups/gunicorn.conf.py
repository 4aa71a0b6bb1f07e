# /srv/fastapi/gunicorn.conf.py: Gunicorn reads it from its working directory.
# The worker count comes from WEB_CONCURRENCY, set in the unit.
worker_class = "uvicorn_worker.UvicornWorker"
bind = "127.0.0.1:8000"  # only nginx, on this host, reaches the app server
timeout = 10  # heartbeat: a worker whose event loop is blocked this long is replaced
graceful_timeout = 20  # on TERM, requests in flight get this long; the unit waits 30
max_requests = 1000  # recycle each worker after about this many requests
max_requests_jitter = 100
control_socket_disable = True  # the fastapi user has no writable home for gunicornc's socket
