# --8<-- [start:image]
docker build -t fastapi-app .
# --8<-- [end:image]
docker build -f Dockerfile.uvicorn -t fastapi-app:uvicorn .
