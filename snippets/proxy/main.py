import asyncio
import os
import time

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse

# Served under a path prefix such as /api/? Say so here, or with the server's --root-path.
app = FastAPI(root_path=os.environ.get("ROOT_PATH", ""))


@app.get("/")
async def whoami(request: Request) -> dict[str, str | None]:
    # What the app believes about the request, and the raw header the proxy sent.
    return {
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
        "url": str(request.url_for("whoami")),
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
    }


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"echo: {text}")


async def ticks(count: int, every: float):
    for i in range(count):
        yield f"tick {i}\n"
        await asyncio.sleep(every)


@app.get("/ticks")
@app.get("/stream/ticks")  # nginx turns buffering off for /stream/
async def stream(
    count: int = 5, every: float = 0.5, no_buffering: bool = False
) -> StreamingResponse:
    # The X-Accel-Buffering header turns nginx's buffering off for one response.
    headers = {"X-Accel-Buffering": "no"} if no_buffering else {}
    return StreamingResponse(ticks(count, every), media_type="text/plain", headers=headers)


@app.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    size = len(await request.body())
    print(f"upload received: {size} bytes", flush=True)
    return {"bytes": size}


@app.get("/slow/{seconds}")
async def slow(seconds: float) -> dict[str, float]:
    print(f"slow request started on {os.getpid()}", flush=True)
    await asyncio.sleep(seconds)  # waits without blocking the worker
    return {"slept": seconds}


@app.get("/stuck/{seconds}")
async def stuck(seconds: float) -> dict[str, float]:
    time.sleep(seconds)  # noqa: ASYNC251 - blocks the event loop, so Gunicorn's --timeout fires
    return {"slept": seconds}
