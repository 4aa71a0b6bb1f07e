# --8<-- [start:uvicorn-worker]
gunicorn slow:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --timeout 2 --bind 0.0.0.0:8000
# --8<-- [end:uvicorn-worker]
# --8<-- [start:asgi]
gunicorn slow:app --worker-class asgi --workers 2 --timeout 2 --bind 0.0.0.0:8000
# --8<-- [end:asgi]
# --8<-- [start:uvicorn]
uvicorn slow:app --workers 2 --timeout-worker-healthcheck 2 --host 0.0.0.0 --port 8000
# --8<-- [end:uvicorn]
# --8<-- [start:import]
gunicorn slow_import:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --timeout 2 --bind 0.0.0.0:8000
# --8<-- [end:import]
# --8<-- [start:import-preload]
gunicorn slow_import:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --timeout 2 --preload --bind 0.0.0.0:8000
# --8<-- [end:import-preload]
