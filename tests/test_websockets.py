"""docs/websockets.md: broadcasting to WebSocket and SSE clients across worker processes, and
keeping long-lived connections alive through Uvicorn, Gunicorn and nginx.

A client learns which worker holds it from its first frame (WebSocket) or first event (SSE):
the app sends its PID. Clients are opened on new connections until each worker holds some.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import harness
import services

APP = harness.snippet("websockets/main.py")
APP_REDIS = harness.snippet("websockets/main_redis.py")  # served by serve_redis*.sh
NGINX_CONF = "websockets/websockets.conf"
#: nginx's proxy_read_timeout as the page shows it (its default), and as the tests run it.
READ_TIMEOUT, TEST_READ_TIMEOUT = "proxy_read_timeout 60s;", "proxy_read_timeout 3s;"


class Chat:
    """A WebSocket client of /ws: ``pid`` of the worker holding it, the texts it received."""

    def __init__(self, url: str, **kwargs) -> None:
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(connect(url, ping_interval=None, open_timeout=30,
                                                   **kwargs))
        self.pid = json.loads(self.ws.recv(timeout=30))["pid"]
        self.received: list[str] = []

    def poll(self) -> list[str]:
        with contextlib.suppress(TimeoutError):
            while True:
                self.received.append(json.loads(self.ws.recv(timeout=0.05))["text"])
        return self.received

    def close(self) -> None:
        self.stack.close()


class Stream:
    """An SSE client of /events, read by a thread: ``pid``, data texts, heartbeat comments."""

    def __init__(self, url: str, verify: ssl.SSLContext | bool = True) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.received: list[str] = []
        self.heartbeats = 0
        self.closed = False
        self.client = harness.http_client(timeout=httpx.Timeout(30, read=None), verify=verify)
        ready = threading.Event()

        def read() -> None:
            with contextlib.suppress(httpx.HTTPError), self.client.stream("GET", url) as r:
                ready.set()
                for line in r.iter_lines():
                    self.lines.put(line)
            self.lines.put(None)  # the stream ended
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(30)
        self.pid = int(self._hello())

    def _hello(self) -> str:
        first, second = self.lines.get(timeout=30), self.lines.get(timeout=30)
        assert first == "event: hello", first
        return second.removeprefix("data: ")

    def poll(self) -> list[str]:
        with contextlib.suppress(queue.Empty):
            while True:
                line = self.lines.get_nowait()
                if line is None:
                    self.closed = True
                elif line.startswith("data: "):
                    self.received.append(line.removeprefix("data: "))
                elif line.startswith(":"):
                    self.heartbeats += 1
        return self.received

    def close(self) -> None:
        self.client.close()


def one_per_worker(open_client: Callable[[], Chat | Stream], server: harness.Server,
                   ) -> dict[int, Chat | Stream]:
    """Open clients on new connections until two workers hold one each; close the extras."""
    kept: dict[int, Chat | Stream] = {}

    def another() -> bool:
        client = open_client()
        if client.pid in kept:
            client.close()
        else:
            kept[client.pid] = client
        return len(kept) == 2

    harness.wait_until(another, what="each of the two workers holds a client", timeout=120,
                       server=server, describe=lambda: f"clients on workers {sorted(kept)}")
    return kept


@contextlib.contextmanager
def clients_on_both_workers(server: harness.Server) -> Iterator[tuple[list[int], dict, dict]]:
    """A chat client and an SSE client on each of the two workers: (pids, chats, streams)."""
    server.wait_for_workers(2, timeout=60)
    chats = one_per_worker(lambda: Chat(server.url("/ws").replace("http", "ws", 1)), server)
    streams = one_per_worker(lambda: Stream(server.url("/events")), server)
    try:
        assert set(chats) == set(streams), (sorted(chats), sorted(streams))
        yield sorted(chats), chats, streams
    finally:
        for client in [*chats.values(), *streams.values()]:
            client.close()


def wait_received(clients: list[Chat | Stream], text: str, server: harness.Server) -> None:
    harness.wait_until(lambda: all(text in c.poll() for c in clients),
                       what=f"{text!r} reaches {len(clients)} clients", timeout=30, server=server,
                       describe=lambda: repr([c.received for c in clients]))


def worker_pids(server: harness.Server) -> set[int]:
    return {w.pid for w in server.workers()}


# --------------------------------------------------------------------------- broadcast


def test_in_memory_broadcast_stays_on_one_worker(tmp_path: Path) -> None:
    """A message sent through worker X reaches the WebSocket and SSE clients of X only; the
    clients of worker Y, listening all along (they get Y's next message), never get it."""
    with harness.serving("websockets/serve.sh", log_dir=tmp_path) as server, \
            clients_on_both_workers(server) as ((x, y), chats, streams):
        chats[x].ws.send("one")  # broadcast by worker X
        wait_received([chats[x], streams[x]], "one", server)
        chats[y].ws.send("two")  # broadcast by worker Y, after "one" was delivered
        wait_received([chats[y], streams[y]], "two", server)
        chats[x].ws.send("three")
        wait_received([chats[x], streams[x]], "three", server)
        assert chats[y].poll() == streams[y].poll() == ["two"], "Y's clients got only Y's message"
        assert chats[x].poll() == streams[x].poll() == ["one", "three"], "X's clients: X's only"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with services.redis(tmp_path) as url:
        yield url


@pytest.mark.parametrize("command", ["websockets/serve_redis.sh",
                                     "websockets/serve_redis_gunicorn.sh"])
def test_redis_pubsub_broadcast_reaches_every_worker(command: str, redis_url: str,
                                                     tmp_path: Path) -> None:
    """Through Redis pub/sub, the same messages reach every WebSocket and SSE client on both
    workers, in order, and a POST to /messages (post.sh) reaches them all too."""
    with harness.serving(command, log_dir=tmp_path, env={"REDIS_URL": redis_url}) as server, \
            clients_on_both_workers(server) as ((x, y), chats, streams):
        everyone = [*chats.values(), *streams.values()]
        chats[x].ws.send("one")
        wait_received(everyone, "one", server)
        chats[y].ws.send("two")
        wait_received(everyone, "two", server)
        answer = json.loads(harness.run("websockets/post.sh", server=server).output)
        assert answer["workers"] == 2, "both workers are subscribed to the channel"
        wait_received(everyone, "hello", server)
        assert all(c.poll() == ["one", "two", "hello"] for c in everyone), \
            [c.received for c in everyone]


# --------------------------------------------------------------------------- pings and timeouts

DEAD_CLIENT_HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class DeadClient:
    """A WebSocket client that opens the connection and then never answers (as a client whose
    network vanished): it reads what the server sends, and never sends a pong or a close."""

    def __init__(self, server: harness.Server) -> None:
        self.sock = socket.create_connection((harness.HOST, server.port), timeout=30)
        self.sock.sendall(DEAD_CLIENT_HANDSHAKE.encode())
        self.data = b""
        self.eof = False
        harness.wait_until(lambda: self._read() or b"\r\n\r\n" in self.data,
                           what="the WebSocket handshake answer", timeout=30, server=server)
        assert self.data.startswith(b"HTTP/1.1 101"), self.data[:80]
        self.sock.setblocking(False)

    def _read(self) -> bool:
        with contextlib.suppress(BlockingIOError):
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            self.data += chunk
            self.eof = self.eof or not chunk
        return False

    def closed_by_server(self) -> bool:
        self._read()
        return self.eof

    def close(self) -> None:
        self.sock.close()

    @property
    def pinged(self) -> bool:
        """A ping frame from the server: opcode 0x9 with FIN (0x89) after the handshake."""
        return b"\x89" in self.data.partition(b"\r\n\r\n")[2]


def test_uvicorn_pings_drop_a_dead_client_the_asgi_worker_keeps_it(tmp_path: Path) -> None:
    """With --ws-ping-interval 1 --ws-ping-timeout 1 Uvicorn pings a client that no longer
    answers and closes its connection; Gunicorn's asgi worker sends no pings and still holds
    the same kind of client after three times as long."""
    with harness.serving("websockets/serve_pings.sh", log_dir=tmp_path) as server:
        start = time.monotonic()
        dead = DeadClient(server)
        harness.wait_until(dead.closed_by_server, what="Uvicorn closes the dead client",
                           timeout=60, server=server)
        took = time.monotonic() - start
        dead.close()
        assert dead.pinged, "Uvicorn pinged the client before it gave up"
    with harness.serving("websockets/serve_gunicorn.sh:asgi", log_dir=tmp_path) as server:
        dead = DeadClient(server)
        until = time.monotonic() + 3 * took
        harness.wait_until(lambda: dead.closed_by_server() or time.monotonic() > until,
                           what=f"{3 * took:.1f}s pass", timeout=3 * took + 30)
        dead.close()
        assert not dead.eof, "the asgi worker still holds the client"
        assert not dead.pinged, "the asgi worker sent no ping"


def test_uvicorn_ping_defaults_are_20_seconds(tmp_path: Path) -> None:
    """`uvicorn --help` of the pinned version: a ping every 20 s, 20 s to answer it."""
    helptext = harness.run("websockets/uvicorn_help.sh", log_dir=tmp_path).output
    flat = re.sub(r"\s+", " ", helptext)
    for option in ("--ws-ping-interval", "--ws-ping-timeout"):
        # The default within the option's own entry: its text up to the next "--" option.
        entry = re.search(rf"{option} FLOAT ((?:(?! --).)*)", flat)
        assert entry and "[default: 20.0]" in entry[1], (option, flat)


@pytest.mark.parametrize("section", ["asgi", "uvicorn-worker"])
def test_gunicorn_timeout_does_not_kill_a_worker_holding_an_idle_websocket(
        section: str, tmp_path: Path) -> None:
    """With an ASGI worker, --timeout 5 is a heartbeat of the worker process, not a limit on a
    connection: a WebSocket left idle for three times as long still works, on the same worker."""
    with harness.serving(f"websockets/serve_gunicorn.sh:{section}", log_dir=tmp_path) as server:
        before = {w.pid for w in server.wait_for_workers(2)}
        chat = Chat(server.url("/ws").replace("http", "ws", 1))
        until = time.monotonic() + 15
        harness.wait_until(lambda: time.monotonic() > until, what="15 s pass (3 x --timeout)",
                           timeout=60, server=server)
        chat.ws.send("still here")
        wait_received([chat], "still here", server)
        chat.close()
        assert worker_pids(server) == before, "no worker was replaced"
        assert "WORKER TIMEOUT" not in server.log()


# --------------------------------------------------------------------------- nginx


@contextlib.contextmanager
def behind_nginx(command: str, tmp_path: Path, env: dict[str, str] | None = None):
    """The app server and nginx with the page's config, proxy_read_timeout cut to 3 s."""
    with harness.serving(command, log_dir=tmp_path, env=env) as server, \
            harness.nginx([NGINX_CONF], log_dir=tmp_path, upstream=server.ports,
                          test_only={READ_TIMEOUT: TEST_READ_TIMEOUT}) as nginx:
        yield server, nginx


def wss(nginx: harness.Nginx) -> str:
    return nginx.url("/ws").replace("https", "wss", 1)


def still_open_after(seconds: float, closed: Callable[[], bool]) -> bool:
    until = time.monotonic() + seconds
    harness.wait_until(lambda: closed() or time.monotonic() > until,
                       what=f"{seconds}s pass or the connection closes", timeout=seconds + 30)
    return not closed()


def ws_closed(chat: Chat) -> Callable[[], bool]:
    def closed() -> bool:
        try:
            chat.poll()
        except ConnectionClosed:
            return True
        return False
    return closed


def test_nginx_closes_an_idle_websocket_without_pings(tmp_path: Path) -> None:
    """Behind nginx, a WebSocket on which the app server sends nothing (the asgi worker never
    pings) is closed by nginx once proxy_read_timeout passes."""
    with behind_nginx("websockets/serve_gunicorn.sh:asgi", tmp_path) as (server, nginx):
        chat = Chat(wss(nginx), ssl=nginx.tls_context())
        harness.wait_until(ws_closed(chat), what="nginx closes the idle WebSocket", timeout=30,
                           describe=lambda: harness.tail(nginx.prefix / "error.log", 5))
        harness.wait_until(lambda: "upstream timed out" in nginx.log(), timeout=30,
                           what="nginx logs that its read timeout closed it (not the server)",
                           describe=lambda: harness.tail(nginx.prefix / "error.log", 5))


def test_uvicorn_pings_keep_a_websocket_open_through_nginx(tmp_path: Path) -> None:
    """Uvicorn's pings (every 1 s here) are bytes from the app server: nginx keeps the idle
    WebSocket open for three times proxy_read_timeout, and it still carries messages."""
    with behind_nginx("websockets/serve_pings.sh", tmp_path) as (server, nginx):
        chat = Chat(wss(nginx), ssl=nginx.tls_context())
        assert still_open_after(9, ws_closed(chat)), "nginx closed a pinged WebSocket"
        chat.ws.send("after 9 s")
        wait_received([chat], "after 9 s", server)
        chat.close()


@pytest.mark.parametrize(("heartbeat", "stays_open"), [("0", False), ("0.5", True)],
                         ids=["no heartbeat", "heartbeat every 0.5 s"])
def test_sse_heartbeat_keeps_the_stream_open_through_nginx(heartbeat: str, stays_open: bool,
                                                           tmp_path: Path) -> None:
    """An idle SSE stream through nginx is closed after proxy_read_timeout; with a comment line
    sent more often than that (SSE_HEARTBEAT_SECONDS) it stays open."""
    with behind_nginx("websockets/serve.sh", tmp_path,
                      env={"SSE_HEARTBEAT_SECONDS": heartbeat}) as (server, nginx):
        stream = Stream(nginx.url("/events"), verify=nginx.tls_context())

        def closed() -> bool:
            stream.poll()
            return stream.closed

        if stays_open:
            assert still_open_after(9, closed), "nginx closed a stream with heartbeats"
            assert stream.heartbeats >= 3, stream.heartbeats
        else:
            harness.wait_until(closed, what="nginx closes the idle stream", timeout=30)
            assert stream.heartbeats == 0
            harness.wait_until(lambda: "upstream timed out" in nginx.log(), timeout=30,
                               what="nginx logs that its read timeout closed it (not the server)")
        stream.close()


# --------------------------------------------------------------------------- the page


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements build an environment with exactly the pinned versions,
    including the redis client the pub/sub app imports."""
    pins = harness.check_reader_env("websockets", ["websockets/requirements.txt"])
    assert "redis" in pins
    assert APP.path.is_file() and APP_REDIS.path.is_file()


def test_install_command_installs_the_requirements(tmp_path: Path) -> None:
    """install.sh in a fresh virtual environment installs exactly the pins."""
    pins = harness.requirement_pins("websockets/requirements.txt")
    installed = harness.install_as_the_reader("websockets/install.sh", APP.folder, tmp_path)
    assert {n: installed.get(n) for n in pins} == pins
