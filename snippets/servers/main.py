import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket

# Set by the lifespan startup event: a server that skips lifespan leaves it False.
STATE = {"lifespan_ran": False}
# Startup work (loading a model, warming caches) that takes this long; 0 unless set.
STARTUP_SECONDS = float(os.environ.get("STARTUP_SECONDS", "0"))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await asyncio.sleep(STARTUP_SECONDS)  # open pools, load models... here
    STATE["lifespan_ran"] = True
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def hello() -> dict[str, object]:
    # The process ID shows which worker answered.
    return {"pid": os.getpid()}


@app.get("/lifespan")
async def lifespan_ran() -> dict[str, bool]:
    return STATE


@app.get("/client")
async def client(request: Request) -> dict[str, object]:
    # Who the app thinks called, and over which scheme: changed by trusted proxy headers.
    return {"client": request.client.host if request.client else None,
            "scheme": request.url.scheme}


@app.get("/slow")
async def slow(seconds: float) -> dict[str, object]:
    # Waits without blocking: the event loop keeps serving other requests.
    await asyncio.sleep(seconds)
    return {"pid": os.getpid()}


@app.get("/block")
async def block(seconds: float) -> dict[str, object]:
    # A blocking call inside async def: the whole event loop stops (a bug, on purpose).
    time.sleep(seconds)  # noqa: ASYNC251
    return {"pid": os.getpid()}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"{os.getpid()}:{text}")
    await websocket.close()
