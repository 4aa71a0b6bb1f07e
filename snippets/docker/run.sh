docker run --rm -p 8000:8000 -e WEB_CONCURRENCY=3 --stop-timeout 30 fastapi-app
