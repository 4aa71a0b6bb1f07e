# --8<-- [start:serve]
gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 \
  --bind 0.0.0.0:8000
# --8<-- [end:serve]
