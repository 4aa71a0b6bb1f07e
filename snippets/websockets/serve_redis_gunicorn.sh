gunicorn main_redis:app --worker-class asgi --workers 2 --bind 0.0.0.0:8000
