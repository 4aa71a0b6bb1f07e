"""CPU-bound work four ways: inline, in two kinds of thread, in a process pool."""

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request


def burn(n: int) -> int:
    # Pure-Python arithmetic: holds the GIL all along (~70 ms for n=1_000_000 here).
    total = 0
    for i in range(n):
        total += i * i
    return total


# --8<-- [start:pool]
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One process pool per worker process, created in the worker (never at import).
    # "spawn" starts fresh interpreters rather than forking a process that runs a loop.
    processes = int(os.environ.get("CPU_POOL_PROCESSES", "2"))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=spawn) as pool:
        app.state.pool = pool
        yield
# --8<-- [end:pool]


app = FastAPI(lifespan=lifespan)


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"ping": "pong"}


# --8<-- [start:variants]
@app.get("/cpu/inline")
async def inline(n: int = 1_000_000) -> dict[str, int]:
    return {"pid": os.getpid(), "result": burn(n)}  # blocks the event loop


@app.get("/cpu/def")
def in_def(n: int = 1_000_000) -> dict[str, int]:
    return {"pid": os.getpid(), "result": burn(n)}  # FastAPI's thread pool


@app.get("/cpu/to-thread")
async def to_thread(n: int = 1_000_000) -> dict[str, int]:
    return {"pid": os.getpid(), "result": await asyncio.to_thread(burn, n)}  # a thread


@app.get("/cpu/process")
async def in_process(request: Request, n: int = 1_000_000) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    pool = request.app.state.pool
    result = await loop.run_in_executor(pool, burn, n)  # in another process
    return {"pid": os.getpid(), "result": result}
# --8<-- [end:variants]
