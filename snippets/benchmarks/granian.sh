granian main:app --interface asgi --workers 2 --host 0.0.0.0 --port 8000
