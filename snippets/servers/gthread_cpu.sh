gunicorn wsgi_cpu:app --worker-class gthread --workers 1 --threads 4 --bind 0.0.0.0:8000
