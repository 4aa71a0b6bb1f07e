"""An ASGI middleware that refuses request bodies over a size with 413, without reading the rest."""

import json

from main import app as main_app

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB, the same as nginx's client_max_body_size 1m


class BodyLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > self.max_bytes:
            return await self.refuse(send)  # Content-Length says too much: no byte is read
        received, started, refused = 0, False, False

        async def counting_receive():
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes and not refused:  # a chunked body, counted as it arrives
                refused = True
                if not started:
                    await self.refuse(send)
            if refused:
                return {"type": "http.disconnect"}  # the app sees a client that went away
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return  # the 413 is the answer: drop what the app sends after it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise  # an error of the app's own; a refused body's "disconnect" is not

    async def refuse(self, send) -> None:
        body = json.dumps({"detail": f"body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


app = BodyLimit(main_app, MAX_BODY_BYTES)
