export PROMETHEUS_MULTIPROC_DIR="${TMPDIR:-/tmp}/prometheus-multiproc"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
exec uvicorn main:app --host 0.0.0.0 --port 8000 --workers 2
