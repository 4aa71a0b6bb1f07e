# --8<-- [start:in-lifespan]
gunicorn in_lifespan:app --worker-class uvicorn_worker.UvicornWorker --workers 3 --bind 0.0.0.0:8000
# --8<-- [end:in-lifespan]
# --8<-- [start:in-lifespan-asgi]
gunicorn in_lifespan:app --worker-class asgi --workers 3 --bind 0.0.0.0:8000
# --8<-- [end:in-lifespan-asgi]
# --8<-- [start:in-lifespan-uvicorn]
uvicorn in_lifespan:app --workers 3 --host 0.0.0.0 --port 8000
# --8<-- [end:in-lifespan-uvicorn]
# --8<-- [start:locked-lifespan]
gunicorn locked_lifespan:app --worker-class uvicorn_worker.UvicornWorker --workers 3 --bind 0.0.0.0:8000
# --8<-- [end:locked-lifespan]
