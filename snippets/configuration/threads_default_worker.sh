# No --worker-class: the default is sync, and --threads 2 silently turns it into gthread.
gunicorn main:app --threads 2 --bind 0.0.0.0:8000
