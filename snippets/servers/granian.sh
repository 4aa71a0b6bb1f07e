# --8<-- [start:serve]
granian main:app --interface asgi --host 0.0.0.0 --port 8000 --workers 2 \
  --respawn-failed-workers
# --8<-- [end:serve]
# --8<-- [start:default]
granian main:app --interface asgi --host 0.0.0.0 --port 8000 --workers 2
# --8<-- [end:default]
# --8<-- [start:tls]
granian main:app --interface asgi --host 0.0.0.0 --port 8443 --workers 2 \
  --ssl-keyfile server.key --ssl-certificate server.pem
# --8<-- [end:tls]
# --8<-- [start:slow-start]
STARTUP_SECONDS=8 granian main:app --interface asgi --host 0.0.0.0 --port 8000
# --8<-- [end:slow-start]
