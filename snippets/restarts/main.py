"""The app a deploy replaces: VERSION stands for "the code that is running"."""

import asyncio
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

VERSION = "1"


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    # Where an app drains its work on a graceful stop; the line shows that this ran.
    print(f"lifespan shutdown on {os.getpid()}", flush=True)


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str | int]:
    return {"version": VERSION, "pid": os.getpid()}


@app.get("/await/{seconds}")
async def awaiting(seconds: float) -> dict[str, str | int]:
    # A request that is still in flight when a signal comes; the line shows it has arrived.
    print(f"in flight: {seconds}s on {os.getpid()}", flush=True)
    await asyncio.sleep(seconds)
    return {"version": VERSION, "pid": os.getpid()}
