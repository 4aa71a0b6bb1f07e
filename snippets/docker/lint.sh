hadolint Dockerfile Dockerfile.uvicorn Dockerfile.asgi Dockerfile.k8s
