# --8<-- [start:uvicorn-worker]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --graceful-timeout 3 --bind 0.0.0.0:8000
# --8<-- [end:uvicorn-worker]
# --8<-- [start:asgi]
gunicorn main:app --worker-class asgi --workers 2 --graceful-timeout 3 --bind 0.0.0.0:8000
# --8<-- [end:asgi]
# --8<-- [start:uvicorn]
uvicorn main:app --workers 2 --timeout-worker-healthcheck 30 --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn]
# --8<-- [start:preload]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --preload --bind 0.0.0.0:8000
# --8<-- [end:preload]
# --8<-- [start:config]
gunicorn main:app --config workers.conf.py --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:config]
# --8<-- [start:slow-start]
gunicorn slow_start:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000
# --8<-- [end:slow-start]
# --8<-- [start:uvicorn-slow-start]
uvicorn slow_start:app --workers 2 --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn-slow-start]
# --8<-- [start:uvicorn-worker-timeout]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --graceful-timeout 3 --timeout 4 --bind 0.0.0.0:8000
# --8<-- [end:uvicorn-worker-timeout]
# --8<-- [start:slow-start-timeout-uvicorn-worker]
gunicorn slow_start:app --worker-class uvicorn_worker.UvicornWorker --workers 1 --timeout 2 --bind 0.0.0.0:8000
# --8<-- [end:slow-start-timeout-uvicorn-worker]
# --8<-- [start:slow-start-timeout-asgi]
gunicorn slow_start:app --worker-class asgi --workers 1 --timeout 2 --bind 0.0.0.0:8000
# --8<-- [end:slow-start-timeout-asgi]
