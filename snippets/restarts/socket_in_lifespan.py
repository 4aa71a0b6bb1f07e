"""The fix: open connections in the lifespan, which runs in each worker after the fork."""

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

STATSD = ("127.0.0.1", 8125)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    metrics = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    metrics.connect(STATSD)
    app.state.metrics = metrics
    yield
    metrics.close()


app = FastAPI(lifespan=lifespan)


@app.get("/socket")
async def which_socket(request: Request) -> dict[str, int]:
    return {"pid": os.getpid(), "local_port": request.app.state.metrics.getsockname()[1]}
