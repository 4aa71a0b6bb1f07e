"""One worker, one event loop: what await, a blocking call and def do to it.

Each answer says when the wait started and ended (time.monotonic(), in seconds), so the
answers to requests sent together show which waits overlapped.
"""

import asyncio
import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}


@app.get("/io/await")
async def awaiting(seconds: float = 1.0) -> dict[str, float]:
    started = time.monotonic()
    # Real async I/O: the event loop runs other requests while this one waits.
    await asyncio.sleep(seconds)
    return {"started": started, "ended": time.monotonic()}


@app.get("/io/blocking")
async def blocking(seconds: float = 1.0) -> dict[str, float]:
    started = time.monotonic()
    # A blocking call inside async def: the event loop stops until it returns.
    # time.sleep stands in for requests.get(), a sync DB driver, a big file read...
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake this page shows
    return {"started": started, "ended": time.monotonic()}


@app.get("/io/def")
def in_thread(seconds: float = 1.0) -> dict[str, float]:
    started = time.monotonic()
    # A plain def endpoint: FastAPI runs it in a worker thread, off the event loop.
    time.sleep(seconds)
    return {"started": started, "ended": time.monotonic()}
