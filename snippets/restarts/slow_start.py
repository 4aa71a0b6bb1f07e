"""An app whose startup takes a few seconds, as when it loads a model or warms a cache."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

STARTUP_SECONDS = 6


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await asyncio.sleep(STARTUP_SECONDS)  # stands in for the slow part of your startup
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}
