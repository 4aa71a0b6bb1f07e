# UPSTREAM_URL names the service the app calls
uvicorn clients:app --host 0.0.0.0 --port 8000
