"""An app that loads a model in its lifespan: each worker takes LOAD_SECONDS to start."""

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

LOAD_SECONDS = 6


def load_model() -> dict[str, str]:
    time.sleep(LOAD_SECONDS)  # stands in for reading weights from disk: blocking work
    return {"name": "demo"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    print(f"loading the model in process {os.getpid()}", flush=True)
    app.state.model = load_model()
    print(f"model loaded in process {os.getpid()}", flush=True)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"model": app.state.model["name"]}


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}
