"""The app every benchmark configuration serves: one endpoint for each kind of work."""

import asyncio
import os
import time

from fastapi import FastAPI

app = FastAPI()

WAIT = 0.05  # seconds: stands for a database query or a call to another service
CPU_LOOPS = 100_000  # pure-Python work: a few milliseconds on a current CPU core


def burn_cpu(loops: int = CPU_LOOPS) -> int:
    total = 0
    for i in range(loops):
        total += i * i
    return total


@app.get("/")
async def hello() -> dict[str, int | str]:
    # Trivial: measures the server and the framework. Names the worker and its event loop.
    return {"pid": os.getpid(), "loop": type(asyncio.get_running_loop()).__module__}


@app.get("/io")
async def awaited_io() -> dict[str, int]:
    # The event loop serves other requests while this one waits.
    await asyncio.sleep(WAIT)
    return {"pid": os.getpid()}


@app.get("/cpu")
async def cpu_burst() -> dict[str, int]:
    # Holds the worker's only thread (and the GIL) for the whole computation.
    return {"pid": os.getpid(), "result": burn_cpu() % 1000}


@app.get("/threadpool")
def blocking_in_def() -> dict[str, int]:
    # A plain def: FastAPI runs it in a thread pool, so the event loop stays free.
    time.sleep(WAIT)
    return {"pid": os.getpid()}


@app.get("/blocking")
async def blocking_in_async_def() -> dict[str, int]:
    # The mistake: a blocking call inside async def stops the whole event loop.
    time.sleep(WAIT)  # noqa: ASYNC251 - on purpose; this endpoint measures the damage
    return {"pid": os.getpid()}
