gunicorn heavy:app --worker-class asgi --workers 1 --bind 0.0.0.0:8000 \
  --dirty-app heavy:Burner --dirty-workers 2
