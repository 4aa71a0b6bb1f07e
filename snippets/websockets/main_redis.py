"""The same chat and stream, broadcast through Redis pub/sub to every worker process."""

import asyncio
import contextlib
import os

import redis.asyncio as redis
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

PID = os.getpid()
HEARTBEAT = float(os.environ.get("SSE_HEARTBEAT_SECONDS", "15"))  # 0: no heartbeat
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL = "chat"
sockets: set[WebSocket] = set()  # the chat clients of this worker process
streams: set[asyncio.Queue] = set()  # the SSE clients of this worker process


async def deliver(text: str) -> None:
    """Send to every client connected to this process (called for every published message)."""
    for ws in list(sockets):
        with contextlib.suppress(Exception):  # a client that just left
            await ws.send_json({"text": text, "via": PID})
    for queue in list(streams):
        queue.put_nowait(text)


async def relay(pubsub) -> None:
    """Forward every message published on CHANNEL, by any worker, to this worker's clients."""
    async for message in pubsub.listen():
        if message["type"] == "message":
            await deliver(message["data"])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.redis = redis.from_url(REDIS_URL, decode_responses=True)
    pubsub = app.state.redis.pubsub()
    await pubsub.subscribe(CHANNEL)  # subscribed before the worker takes a request
    task = asyncio.create_task(relay(pubsub))
    yield
    task.cancel()
    await pubsub.aclose()
    await app.state.redis.aclose()


app = FastAPI(lifespan=lifespan)


class Message(BaseModel):
    text: str


@app.get("/")
async def index():
    return {"pid": PID}


@app.post("/messages")
async def post_message(message: Message):
    """Publish; the relay of every worker, this one included, delivers it."""
    receivers = await app.state.redis.publish(CHANNEL, message.text)
    return {"pid": PID, "workers": receivers}


@app.websocket("/ws")
async def chat(websocket: WebSocket):
    await websocket.accept()
    await websocket.send_json({"pid": PID})
    sockets.add(websocket)
    try:
        while True:
            await app.state.redis.publish(CHANNEL, await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(websocket)


async def event_stream():
    queue: asyncio.Queue = asyncio.Queue()
    streams.add(queue)
    try:
        yield f"event: hello\ndata: {PID}\n\n"
        while True:
            try:
                text = await asyncio.wait_for(queue.get(), HEARTBEAT or None)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            yield f"data: {text}\n\n"
    finally:
        streams.discard(queue)


@app.get("/events")
async def events():
    return StreamingResponse(event_stream(), media_type="text/event-stream")
