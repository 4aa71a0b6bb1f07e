# --8<-- [start:serve]
gunicorn main:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000
# --8<-- [end:serve]
# --8<-- [start:worker-connections]
gunicorn main:app --worker-class asgi --workers 1 --bind 0.0.0.0:8000 \
  --worker-connections 2
# --8<-- [end:worker-connections]
# --8<-- [start:slow-client]
gunicorn main:app --worker-class asgi --workers 1 --bind 0.0.0.0:8000 --timeout 2
# --8<-- [end:slow-client]
