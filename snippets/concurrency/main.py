"""One worker, one event loop: what await, a blocking call and a def endpoint do to it."""

import asyncio
import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}


# --8<-- [start:await]
@app.get("/io/await")
async def awaiting(seconds: float = 1.0) -> dict[str, float]:
    # Real async I/O: the event loop runs other requests while this one waits.
    await asyncio.sleep(seconds)
    return {"waited": seconds}
# --8<-- [end:await]


# --8<-- [start:blocking]
@app.get("/io/blocking")
async def blocking(seconds: float = 1.0) -> dict[str, float]:
    # A blocking call inside async def: the event loop stops until it returns.
    # time.sleep stands in for requests.get(), a sync DB driver, a big file read...
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake this page shows
    return {"waited": seconds}
# --8<-- [end:blocking]


# --8<-- [start:def]
@app.get("/io/def")
def in_thread(seconds: float = 1.0) -> dict[str, float]:
    # A plain def endpoint: FastAPI runs it in a worker thread, off the event loop.
    time.sleep(seconds)
    return {"waited": seconds}
# --8<-- [end:def]
