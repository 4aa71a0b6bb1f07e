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
# --8<-- [start:behind-nginx]
gunicorn main:app --worker-class asgi --workers 2 --bind 127.0.0.1:8000 --timeout 10
# --8<-- [end:behind-nginx]
# --8<-- [start:root-path]
gunicorn main:app --worker-class asgi --workers 2 --bind 127.0.0.1:8000 --root-path /api
# --8<-- [end:root-path]
