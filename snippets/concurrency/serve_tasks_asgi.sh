gunicorn tasks:app --worker-class asgi --workers 1 --bind 0.0.0.0:8000
