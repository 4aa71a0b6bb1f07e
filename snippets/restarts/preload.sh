# --8<-- [start:import]
gunicorn socket_at_import:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000
# --8<-- [end:import]
# --8<-- [start:import-preload]
gunicorn socket_at_import:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --preload --bind 0.0.0.0:8000
# --8<-- [end:import-preload]
# --8<-- [start:lifespan-preload]
gunicorn socket_in_lifespan:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --preload --bind 0.0.0.0:8000
# --8<-- [end:lifespan-preload]
