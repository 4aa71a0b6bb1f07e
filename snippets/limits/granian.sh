# --8<-- [start:serve]
granian main:app --interface asgi --host 0.0.0.0 --port 8000 --workers 2
# --8<-- [end:serve]
# --8<-- [start:header-timeout]
granian main:app --interface asgi --host 0.0.0.0 --port 8000 \
  --http1-header-read-timeout 2000
# --8<-- [end:header-timeout]
