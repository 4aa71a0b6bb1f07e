"""docs/django.md: a DRF endpoint and a Channels WebSocket consumer behind Gunicorn, two workers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

import harness
import services

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
            with harness.http_client(timeout=15) as client:
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


def test_redis_channel_layer_reaches_both_workers(log_dir: Path) -> None:
    """With the Redis channel layer (CHANNEL_LAYER=redis), a group broadcast sent through one
    worker reaches the client on the other worker too, and the neighbour on the same worker."""
    with services.redis(log_dir) as redis_url, \
            harness.serving("django/serve_redis_layer.sh", log_dir=log_dir, cwd=PROJECT,
                            env={"REDIS_URL": redis_url}, ready_path="/api/hello/") as server:
        workers = {p.pid for p in server.wait_for_workers(2)}
        url = server.url("/ws/chat/").replace("http://", "ws://")
        result = asyncio.run(websocket_checks(url, server.url(""), workers))
        assert result["neighbour"]["broadcast"] == "ping"
        assert result["stranger"] is not None, "the Redis layer reaches the other worker"
        assert result["stranger"] == {"broadcast": "ping", "pid": result["other"]}


# ------------------------------------------------------------------------ note 003's install line


def uv() -> list[str]:
    """The uv that runs this suite (the README installs it into the python3 that runs it)."""
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    if shutil.which("uv"):
        return [shutil.which("uv")]
    return ["python3", "-m", "uv"]


def note003_venv(tmp_path: Path, install: str, log_dir: Path) -> dict[str, str]:
    """A fresh venv built with uv (with pip in it), the note's line run in it, and the project's
    own packages at the handbook's versions (the note takes those as already installed)."""
    venv = tmp_path / "venv"
    subprocess.run([*uv(), "venv", "--seed", "--quiet", "--python", sys.executable, str(venv)],
                   check=True, timeout=300, capture_output=True)
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    harness.run(install, env=env, timeout=600, log_dir=log_dir)
    project = [f"{name}=={version(name)}" for name in ("django", "djangorestframework", "channels")]
    subprocess.run([*uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                    *project], check=True, timeout=600, capture_output=True)
    return env


def installed(env: dict[str, str], name: str) -> str | None:
    r = subprocess.run([f"{env['VIRTUAL_ENV']}/bin/python", "-c",
                        f"import importlib.metadata as m; print(m.version({name!r}))"],
                       capture_output=True, text=True, timeout=60)
    return r.stdout.strip() if r.returncode == 0 else None


def test_note003_install_line_as_written_cannot_boot_a_worker(tmp_path: Path,
                                                             log_dir: Path) -> None:
    """Nothing pins Uvicorn, so pip takes the newest; uvicorn-worker 0.3.0 calls a method
    Uvicorn 0.36.0 replaced, and every worker fails to boot."""
    env = note003_venv(tmp_path, "django/note003_install.sh:as-written", log_dir)
    uvicorn = installed(env, "uvicorn")
    assert tuple(int(x) for x in uvicorn.split(".")[:2]) >= (0, 36), uvicorn
    result = harness.run(SERVERS["uvicorn-worker"], env=env, cwd=PROJECT, check=False,
                         ports=harness.port_map(), timeout=120, log_dir=log_dir)
    assert result.returncode != 0, result.output
    assert "The `setup_event_loop` method was replaced by `get_loop_factory`" in result.output
    assert "Worker failed to boot" in result.output


def test_note003_install_line_has_no_websocket_library(tmp_path: Path, log_dir: Path) -> None:
    """With a Uvicorn that 0.3.0 still works with, DRF answers, but the WebSocket step fails:
    plain `uvicorn` brings neither websockets nor wsproto."""
    env = note003_venv(tmp_path, "django/note003_install.sh:older-uvicorn", log_dir)
    assert installed(env, "uvicorn-worker") == "0.3.0"
    assert installed(env, "websockets") is None and installed(env, "wsproto") is None
    with harness.serving(SERVERS["uvicorn-worker"], log_dir=log_dir, cwd=PROJECT, env=env,
                         ready_path="/api/hello/") as server:
        server.wait_for_workers(2)
        assert server.get("/api/hello/").json()["message"] == "Hello from DRF"
        url = server.url("/ws/chat/").replace("http://", "ws://")
        assert asyncio.run(handshake(url, server.url(""))) == 404
        server.wait_for_log(r"No supported WebSocket library detected")


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements pin every package with ==; the environment its commands run in
    is built from them alone and holds exactly those versions."""
    harness.check_reader_env("django", shows=["django/requirements.txt"])
