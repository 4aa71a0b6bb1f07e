# --8<-- [start:serve]
fastapi run main.py --host 0.0.0.0 --port 8000 --workers 2
# --8<-- [end:serve]
# --8<-- [start:recycle]
fastapi run main.py --host 0.0.0.0 --port 8000 --workers 2 --limit-max-requests 5
# --8<-- [end:recycle]
# --8<-- [start:tls]
fastapi run main.py --host 0.0.0.0 --port 8443 --workers 2 \
  --ssl-keyfile server.key --ssl-certfile server.pem
# --8<-- [end:tls]
# --8<-- [start:help]
fastapi run --help
# --8<-- [end:help]
# --8<-- [start:slow-start]
STARTUP_SECONDS=8 fastapi run main.py --host 0.0.0.0 --port 8000 --workers 2
# --8<-- [end:slow-start]
