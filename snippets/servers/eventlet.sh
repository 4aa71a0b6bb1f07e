gunicorn main:app --worker-class eventlet --bind 0.0.0.0:8000
