"""A chat (WebSocket) and a notifications stream (SSE) that broadcast in one process only."""

import asyncio
import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

PID = os.getpid()
HEARTBEAT = float(os.environ.get("SSE_HEARTBEAT_SECONDS", "15"))  # 0: no heartbeat
app = FastAPI()
sockets: set[WebSocket] = set()  # the chat clients of THIS worker process
streams: set[asyncio.Queue] = set()  # the SSE clients of THIS worker process


class Message(BaseModel):
    text: str


async def deliver(text: str) -> int:
    """Send to every client connected to this process; return how many there were."""
    for ws in list(sockets):
        await ws.send_json({"text": text, "via": PID})
    for queue in list(streams):
        queue.put_nowait(text)
    return len(sockets) + len(streams)


@app.get("/")
async def index():
    return {"pid": PID}


@app.post("/messages")
async def post_message(message: Message):
    return {"pid": PID, "delivered": await deliver(message.text)}


@app.websocket("/ws")
async def chat(websocket: WebSocket):
    await websocket.accept()
    await websocket.send_json({"pid": PID})  # first frame: which worker holds this client
    sockets.add(websocket)
    try:
        while True:  # what a client sends goes to the others, like a POST
            await deliver(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(websocket)


async def event_stream():
    queue: asyncio.Queue = asyncio.Queue()
    streams.add(queue)
    try:
        yield f"event: hello\ndata: {PID}\n\n"  # first event: which worker holds this client
        while True:
            try:
                text = await asyncio.wait_for(queue.get(), HEARTBEAT or None)
            except TimeoutError:
                yield ": heartbeat\n\n"  # a comment line: clients ignore it, proxies see bytes
                continue
            yield f"data: {text}\n\n"
    finally:
        streams.discard(queue)


@app.get("/events")
async def events():
    return StreamingResponse(event_stream(), media_type="text/event-stream")
