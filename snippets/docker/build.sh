docker build -t fastapi-app .
docker build -f Dockerfile.uvicorn -t fastapi-app:uvicorn .
