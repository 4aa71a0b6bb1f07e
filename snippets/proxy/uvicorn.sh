# --8<-- [start:default]
uvicorn main:app --host 0.0.0.0 --port 8000
# --8<-- [end:default]
# --8<-- [start:trust-proxy]
uvicorn main:app --host 0.0.0.0 --port 8000 --forwarded-allow-ips=10.0.0.1
# --8<-- [end:trust-proxy]
# --8<-- [start:env]
FORWARDED_ALLOW_IPS=10.0.0.1 uvicorn main:app --host 0.0.0.0 --port 8000
# --8<-- [end:env]
# --8<-- [start:no-proxy-headers]
uvicorn main:app --host 0.0.0.0 --port 8000 --no-proxy-headers
# --8<-- [end:no-proxy-headers]
# --8<-- [start:trust-all]
uvicorn main:app --host 0.0.0.0 --port 8000 --forwarded-allow-ips='*'
# --8<-- [end:trust-all]
# --8<-- [start:behind-nginx]
uvicorn main:app --host 127.0.0.1 --port 8000 --workers 2
# --8<-- [end:behind-nginx]
# --8<-- [start:root-path]
uvicorn main:app --host 127.0.0.1 --port 8000 --workers 2 --root-path /api
# --8<-- [end:root-path]
