# --8<-- [start:old]
gunicorn main:app --worker-class uvicorn.workers.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:old]
# --8<-- [start:show-warnings]
PYTHONWARNINGS=default gunicorn main:app --worker-class uvicorn.workers.UvicornWorker \
  --bind 0.0.0.0:8000
# --8<-- [end:show-warnings]
# --8<-- [start:new]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
# --8<-- [end:new]
