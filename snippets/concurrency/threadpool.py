"""def endpoints share one thread limiter per worker process: see it, fill it, resize it."""

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI


# --8<-- [start:resize]
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The limiter belongs to this worker's event loop, so set it here, not at import time.
    tokens = os.environ.get("THREADPOOL_TOKENS")
    if tokens:
        anyio.to_thread.current_default_thread_limiter().total_tokens = int(tokens)
    yield
# --8<-- [end:resize]


app = FastAPI(lifespan=lifespan)


@app.get("/threadpool")
async def threadpool() -> dict[str, float]:
    limiter = anyio.to_thread.current_default_thread_limiter()
    return {"total_tokens": limiter.total_tokens, "borrowed_tokens": limiter.borrowed_tokens}


@app.get("/sync")
def sync_endpoint(seconds: float = 1.0) -> dict[str, float]:
    time.sleep(seconds)  # holds one token of the limiter while it sleeps
    return {"slept": seconds}


@app.get("/to-thread")
async def to_thread_endpoint(seconds: float = 1.0) -> dict[str, float]:
    # asyncio.to_thread uses the event loop's own executor, not anyio's limiter.
    await asyncio.to_thread(time.sleep, seconds)
    return {"slept": seconds}
