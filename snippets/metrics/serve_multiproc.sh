# One folder for the workers' metric files, emptied at every start
export PROMETHEUS_MULTIPROC_DIR="${TMPDIR:-/tmp}/prometheus-multiproc"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
exec gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers 2 --bind 0.0.0.0:8000 -c multiproc.conf.py
