# What each replica's container runs (DATABASE_URL set in its environment):
# the ENTRYPOINT, with the CMD as its arguments.
./entrypoint.sh gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000
