# --8<-- [start:behind-nginx]
fastapi run main.py --host 127.0.0.1 --port 8000 --workers 2
# --8<-- [end:behind-nginx]
# --8<-- [start:root-path]
fastapi run main.py --host 127.0.0.1 --port 8000 --workers 2 --root-path /api
# --8<-- [end:root-path]
