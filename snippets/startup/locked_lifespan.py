"""If migrations must run in the app: behind the advisory lock, so one worker applies them."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from migrate import migrate


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    applied = migrate(os.environ["DATABASE_URL"])
    print(f"process {os.getpid()} applied migrations: {applied}", flush=True)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}
