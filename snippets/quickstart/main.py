import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, object]:
    # The worker's process ID shows which worker process answered.
    return {"message": "Hello from FastAPI", "pid": os.getpid()}
