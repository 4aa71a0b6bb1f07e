# Each process of the server may map at most 1 GiB (RLIMIT_AS, inherited by the workers).
prlimit --as=1073741824 gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000
