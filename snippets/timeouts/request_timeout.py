"""An application-level upper bound on the time a request may take: 504 when it runs out."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTimeout:
    """Pure ASGI middleware: cancel the request after `seconds` and answer 504.

    It can only interrupt code that awaits. A blocking call inside `async def` holds the
    event loop, so the deadline cannot fire until it returns; a `def` endpoint's thread
    cannot be cancelled at all and keeps running after the 504 has been sent.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        response_started = False

        async def send_and_track(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, send_and_track)
        except TimeoutError:
            if response_started:
                raise  # too late for a 504: the status line is already on the wire
            await send(
                {
                    "type": "http.response.start",
                    "status": 504,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"request timed out\n"})
