uvicorn main:app --workers 2 --timeout-worker-healthcheck 2 --host 0.0.0.0 --port 8000
