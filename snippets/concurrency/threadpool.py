"""def endpoints share one thread limiter per worker: see it, fill it, resize it."""

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
    # The limiter belongs to this worker's event loop: set it here, not at import.
    tokens = os.environ.get("THREADPOOL_TOKENS")
    if tokens:
        anyio.to_thread.current_default_thread_limiter().total_tokens = int(tokens)
    yield
# --8<-- [end:resize]


app = FastAPI(lifespan=lifespan)


@app.get("/threadpool")
async def threadpool() -> dict[str, float]:
    limiter = anyio.to_thread.current_default_thread_limiter()
    return {
        "total_tokens": limiter.total_tokens,
        "borrowed_tokens": limiter.borrowed_tokens,
    }


def nap(seconds: float) -> dict[str, float]:
    # Runs in a worker thread: when it got its thread, and when it gave it back.
    started = time.monotonic()
    time.sleep(seconds)
    return {"started": started, "ended": time.monotonic()}


@app.get("/sync")
def sync_endpoint(seconds: float = 1.0) -> dict[str, float]:
    return nap(seconds)  # holds one token of the limiter while it sleeps


@app.get("/to-thread")
async def to_thread_endpoint(seconds: float = 1.0) -> dict[str, float]:
    # asyncio.to_thread uses the event loop's own executor, not anyio's limiter.
    return await asyncio.to_thread(nap, seconds)
