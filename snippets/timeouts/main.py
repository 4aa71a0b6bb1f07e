"""Three ways for an endpoint to take `seconds` to answer, and what each does to the worker."""

import asyncio
import os
import time

import anyio.to_thread
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/await/{seconds}")
async def awaiting(seconds: float) -> dict[str, int]:
    # Waits without holding the event loop: other requests, and the heartbeat, go on.
    print(f"in flight: {seconds}s on {os.getpid()}", flush=True)
    await asyncio.sleep(seconds)
    return {"pid": os.getpid()}


@app.get("/block/{seconds}")
async def blocking(seconds: float) -> dict[str, int]:
    # The mistake: a blocking call inside async def stalls the whole event loop.
    time.sleep(seconds)  # noqa: ASYNC251
    return {"pid": os.getpid()}


@app.get("/thread/{seconds}")
def in_thread(seconds: float) -> dict[str, int]:
    # A plain def endpoint runs in the thread pool, so the event loop stays free.
    time.sleep(seconds)
    print(f"def endpoint finished after {seconds}s", flush=True)
    return {"pid": os.getpid()}


@app.get("/threads-busy")
async def threads_busy() -> dict[str, int]:
    # How many thread-pool slots are taken by def endpoints right now.
    limiter = anyio.to_thread.current_default_thread_limiter()
    return {"busy": limiter.borrowed_tokens}
