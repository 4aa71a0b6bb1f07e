# --8<-- [start:default]
uvicorn main:app --host 0.0.0.0 --port 8000 --workers 2 --log-config logging.json
# --8<-- [end:default]
# --8<-- [start:trust-proxy]
uvicorn main:app --host 0.0.0.0 --port 8000 --workers 2 --log-config logging.json --forwarded-allow-ips=10.0.0.1
# --8<-- [end:trust-proxy]
