"""docs/django.md: a DRF endpoint and a Channels WebSocket consumer behind Gunicorn, two workers."""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import harness
import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

PROJECT = harness.snippet("django/asgi.py").folder  # the commands run from the project folder
SERVERS = {
    "uvicorn-worker": "django/serve_uvicorn_worker.sh",
    "gunicorn-asgi-worker": "django/serve_asgi_worker.sh",
}
#: The project the servers import: serving /api/hello/ and /ws/chat/ exercises every file.
PROJECT_FILES = ["django/settings.py", "django/urls.py", "django/views.py",
                 "django/consumers.py", "django/asgi.py"]
assert all(harness.snippet(f).folder == PROJECT for f in PROJECT_FILES)


async def receive_until(ws, wanted: Callable[[dict], bool], seconds: float) -> dict:
    """Read messages until one matches; others (broadcasts of other clients) are skipped."""
    async with asyncio.timeout(seconds):
        while True:
            message = json.loads(await ws.recv())
            if wanted(message):
                return message


async def websocket_checks(url: str, origin: str, workers: set[int]) -> dict[str, object]:
    """Connect clients until two share a worker and one is on the other worker; then send one
    message and see who receives its group broadcast."""
    by_pid: dict[int, list] = defaultdict(list)
    opened = []
    try:
        for i in range(40):
            ws = await websockets.connect(url, origin=origin, open_timeout=15)
            opened.append(ws)
            await ws.send(f"hello {i}")
            echo = await receive_until(ws, lambda m, i=i: m.get("message") == f"Echo: hello {i}",
                                       15)
            assert echo["pid"] in workers, echo
            by_pid[echo["pid"]].append(ws)
            pairs = [pid for pid, clients in by_pid.items() if len(clients) >= 2]
            if pairs and len(by_pid) == 2:
                break
        else:
            pytest.fail(f"40 WebSocket clients did not spread over both workers: "
                        f"{ {pid: len(c) for pid, c in by_pid.items()} }")
        same = pairs[0]
        other = next(pid for pid in by_pid if pid != same)
        sender, neighbour, stranger = by_pid[same][0], by_pid[same][1], by_pid[other][0]

        await sender.send("ping")
        echo = await receive_until(sender, lambda m: "message" in m, 15)
        # The neighbour on the same worker gets the broadcast (the layer works)...
        got = await receive_until(neighbour, lambda m: m.get("broadcast") == "ping", 15)
        # ...the client on the other worker does not, however long it waits.
        try:
            leaked = await receive_until(stranger, lambda m: m.get("broadcast") == "ping", 3)
        except TimeoutError:
            leaked = None
        return {"echo": echo, "neighbour": got, "stranger": leaked, "same": same, "other": other}
    finally:
        for ws in opened:
            await ws.close()


async def handshake(url: str, origin: str | None) -> int:
    """The HTTP status of a WebSocket handshake (101: switched protocols, accepted)."""
    try:
        async with websockets.connect(url, origin=origin, open_timeout=15):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize("command", SERVERS.values(), ids=SERVERS.keys())
def test_drf_and_websocket_on_two_workers(command: str, log_dir: Path) -> None:
    """DRF answers from both workers; the WebSocket consumer echoes on both; an in-memory
    channel layer broadcast reaches clients on the sender's worker only; a handshake without an
    allowed Origin is refused."""
    with harness.serving(command, log_dir=log_dir, cwd=PROJECT, ready_path="/api/hello/") as server:
        workers = {p.pid for p in server.wait_for_workers(2)}

        # The page's check command.
        body = json.loads(harness.run("django/check.sh", server=server).output)
        assert body["message"] == "Hello from DRF" and body["pid"] in workers

        # Both worker processes answer the DRF view (each request on a new connection).
        seen = set()
        for _ in range(60):
            with httpx.Client(timeout=15) as client:
                r = client.get(server.url("/api/hello/"))
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            seen.add(r.json()["pid"])
            if seen == workers:
                break
        assert seen == workers, f"60 requests reached only {seen} of {workers}"

        url = server.url("/ws/chat/").replace("http://", "ws://")
        result = asyncio.run(websocket_checks(url, server.url(""), workers))
        assert result["echo"] == {"message": "Echo: ping", "pid": result["same"]}
        assert result["neighbour"]["broadcast"] == "ping"
        assert result["stranger"] is None, "InMemoryChannelLayer does not cross processes"

        # AllowedHostsOriginValidator refuses a handshake without an allowed Origin header.
        assert asyncio.run(handshake(url, None)) == 403
        assert asyncio.run(handshake(url, "http://evil.example")) == 403
        assert asyncio.run(handshake(url, server.url(""))) == 101

        # Channels' router has no lifespan route; the Uvicorn worker says so and carries on.
        lifespan_note = "ASGI 'lifespan' protocol appears unsupported."
        assert (lifespan_note in server.log()) == ("uvicorn" in command)


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements pin every package with ==; the environment its commands run in
    is built from that file alone and holds exactly those versions."""
    env = harness.reader_env("django")
    assert env.requirements == (harness.snippet("django/requirements.txt").path,)
    for line in harness.snippet("django/requirements.txt").text.split():
        name, pinned = re.fullmatch(r"([\w-]+)(?:\[[\w,]+\])?==(\S+)", line).groups()
        assert env.version(name) == pinned, line
