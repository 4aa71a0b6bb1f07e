uvicorn --help
