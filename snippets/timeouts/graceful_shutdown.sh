uvicorn main:app --timeout-graceful-shutdown 2 --host 0.0.0.0 --port 8000
