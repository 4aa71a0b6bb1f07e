import logging
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI
from jsonlog import request_id

log = logging.getLogger("app")


class RequestIdMiddleware:
    """Give each request an ID (the client's X-Request-ID, or a new one), for every log line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        # Each request runs in its own task, so this value is seen by this request only,
        # including the server's access line for it; no reset, or the access line loses it.
        request_id.set(rid)
        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Log the traceback here, once, on every server (Gunicorn's asgi worker logs none
            # for an error FastAPI has already answered), and answer 500 without re-raising.
            log.exception("unhandled error")
            if not started:
                await send_with_id({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"text/plain")]})
                await send_with_id({"type": "http.response.body", "body": b"Internal Server Error"})


@asynccontextmanager
async def lifespan(app: FastAPI):
    log.info("app started")
    yield
    log.info("app stopping")


app = FastAPI(lifespan=lifespan)
app.add_middleware(RequestIdMiddleware)


@app.get("/")
async def hello() -> dict[str, str]:
    log.info("saying hello")
    return {"message": "hello"}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("something broke")
