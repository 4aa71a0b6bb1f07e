docker run --rm -p 8080:8080 -e UVICORN_PORT=8080 fastapi-app:uvicorn
