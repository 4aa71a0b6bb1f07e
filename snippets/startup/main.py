"""Start-up work in the lifespan: every worker process runs it when it starts."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    print(f"start-up work ran in process {os.getpid()}", flush=True)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}
