"""Three ways for an endpoint to take `seconds` to answer, and what each does to the worker."""

import asyncio
import os
import time

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

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


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    # Reads the body as it arrives: a slow client makes this await, like any other I/O.
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return {"received": received, "pid": os.getpid()}


@app.get("/download/{megabytes}")
async def download(megabytes: int) -> StreamingResponse:
    # Sends the body as fast as the client reads it: a slow client makes this await too.
    async def body():
        for _ in range(megabytes * 16):
            yield b"x" * 65536

    headers = {"Content-Length": str(megabytes * 2**20), "X-Pid": str(os.getpid())}

    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)
