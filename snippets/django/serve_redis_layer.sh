CHANNEL_LAYER=redis gunicorn asgi:application --worker-class uvicorn_worker.UvicornWorker \
  --workers 2 --bind 0.0.0.0:8000
