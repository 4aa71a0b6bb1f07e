"""The app every image on this page serves: a greeting and two health endpoints."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response, status


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Open connection pools and warm caches here; the worker is ready after this.
    app.state.ready = True
    yield
    app.state.ready = False


app = FastAPI(lifespan=lifespan)
app.state.ready = False


@app.get("/")
async def hello() -> dict[str, object]:
    return {"message": "Hello from FastAPI", "pid": os.getpid()}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    # Liveness: the process answers. Check nothing else here, or a database outage
    # would get every container restarted.
    return {"status": "ok"}


@app.get("/readyz")
async def readyz(response: Response) -> dict[str, str]:
    # Readiness: this process may receive traffic. Checks of what a request needs
    # (a database pool, say) belong here.
    if not app.state.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "starting"}
    return {"status": "ready"}
