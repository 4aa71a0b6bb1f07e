# --8<-- [start:default]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:default]
# --8<-- [start:trust-proxy]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000 --forwarded-allow-ips=10.0.0.1
# --8<-- [end:trust-proxy]
# --8<-- [start:env]
FORWARDED_ALLOW_IPS=10.0.0.1 gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:env]
# --8<-- [start:trust-all]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000 --forwarded-allow-ips='*'
# --8<-- [end:trust-all]
# --8<-- [start:behind-nginx]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 127.0.0.1:8000 --timeout 10
# --8<-- [end:behind-nginx]
# --8<-- [start:unix-socket]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind unix:/run/gunicorn.sock --timeout 10 --forwarded-allow-ips='*'
# --8<-- [end:unix-socket]
# --8<-- [start:unix-socket-untrusted]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind unix:/run/gunicorn.sock --timeout 10
# --8<-- [end:unix-socket-untrusted]
# --8<-- [start:root-path]
ROOT_PATH=/api gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 127.0.0.1:8000
# --8<-- [end:root-path]
# --8<-- [start:root-path-ignored]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 127.0.0.1:8000 --root-path /api
# --8<-- [end:root-path-ignored]
