"""The same load at import time: with --preload the master does it once, before forking."""

import os

from fastapi import FastAPI
from slow import load_model

print(f"loading the model in process {os.getpid()}", flush=True)
MODEL = load_model()
print(f"model loaded in process {os.getpid()}", flush=True)

app = FastAPI()


@app.get("/")
async def index() -> dict[str, object]:
    return {"pid": os.getpid(), "model": MODEL["name"]}
