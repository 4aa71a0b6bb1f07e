# --8<-- [start:default]
gunicorn main:app --worker-class asgi --bind 0.0.0.0:8000
# --8<-- [end:default]
# --8<-- [start:trust-proxy]
gunicorn main:app --worker-class asgi --bind 0.0.0.0:8000 --forwarded-allow-ips=10.0.0.1
# --8<-- [end:trust-proxy]
# --8<-- [start:trust-all]
gunicorn main:app --worker-class asgi --bind 0.0.0.0:8000 --forwarded-allow-ips='*'
# --8<-- [end:trust-all]
# --8<-- [start:middleware]
gunicorn behind_proxy:app --worker-class asgi --bind 0.0.0.0:8000
# --8<-- [end:middleware]
