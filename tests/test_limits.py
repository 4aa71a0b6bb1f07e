"""docs/limits.md: body and header limits, overload, slow clients, and where load goes.

Every server runs in the page's reader environment (snippets/limits/requirements.txt). Each
test compares what it sees against the same server or a second one in the same run; none
asserts an absolute time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import harness

REQUIREMENTS = "limits/requirements.txt"
APP = "limits/main.py"  # every command serves main:app (or body_limit:app) from snippets/limits
BODY_LIMIT_APP = "limits/body_limit.py"
SERVE = {
    "uvicorn": "limits/uvicorn.sh:serve",
    "gunicorn + uvicorn-worker": "limits/gunicorn_uvicorn_worker.sh:serve",
    "gunicorn asgi worker": "limits/gunicorn_asgi.sh:serve",
    "granian": "limits/granian.sh:serve",
}
MIB = 2**20


@contextlib.contextmanager
def serving(ref: str, log_dir: Path):
    """harness.serving, where a lone Uvicorn's exit by the SIGTERM it re-raises counts as clean."""
    with harness.serving(ref, log_dir=log_dir, expect_clean=False) as server:
        if ref == SERVE["granian"]:  # a TERM while a Granian worker still starts can hang it
            harness.wait_until(lambda: server.log().count("Started worker-") == 2,
                               what="both Granian workers started", server=server)
        yield server
        assert server.stop(expect_clean=False) in (0, -signal.SIGTERM), server.log()


def serving_processes(server: harness.Server) -> list:
    """The workers, or the server process itself when it has none (Uvicorn without --workers)."""
    return server.workers() or [server.main_process()]


def connected_ports(server: harness.Server) -> set[int]:
    """The client ports of the connections the serving processes hold open."""
    return {c.raddr.port for p in serving_processes(server) for c in p.net_connections("tcp")
            if c.raddr and c.status == "ESTABLISHED"}


def raw_request(port: int, head: bytes, timeout: float = 30) -> str:
    """Send ``head`` as is and return the status line the server answers (or how it closed)."""
    with socket.create_connection((harness.HOST, port), timeout=timeout) as sock:
        sock.sendall(head)
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    return data.split(b"\r\n", 1)[0].decode() if data else "closed unanswered"


def state(server: harness.Server) -> dict:
    """What the (single) worker says about itself: pid, in_flight, most_in_flight."""
    return server.get("/").json()


def test_requirements_pin_the_verified_versions() -> None:
    """The page shows one requirements file; its environment holds exactly what it pins."""
    pins = harness.check_reader_env("limits", [REQUIREMENTS])
    assert {"fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "granian"} <= set(pins)
    harness.snippet(APP)


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("command", SERVE.values(), ids=SERVE.keys())
def test_no_server_limits_the_body(command: str, log_dir: Path) -> None:
    """No server refuses a large body: each hands all 64 MiB to the app, which reads them."""
    with serving(command, log_dir=log_dir) as server:
        r = harness.http_post(server.url("/upload"), content=b"x" * (64 * MIB), timeout=120)
        assert (r.status_code, r.json()["received"]) == (200, 64 * MIB), r.text


#: What each server answers to a request line, a header count and one header over Gunicorn's
#: defaults (4094 bytes, 100 fields, 8190 bytes). The line is under 8190 bytes, so a default of
#: 8190 would let it through. 404 is the app's answer: the server let it in.
OVERSIZED = {
    "request line of 6,000 bytes": b"GET /" + b"a" * 6_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "150 header fields": b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    "one header of 10,000 bytes": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000
    + b"\r\n\r\n",
}
PASSED, OK = "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"  # the app's answers
URI_TOO_LONG = "HTTP/1.1 414 URI Too Long"
TOO_LARGE = "HTTP/1.1 431 Request Header Fields Too Large"
EXPECTED = {
    "uvicorn": [PASSED, OK, OK],
    "gunicorn + uvicorn-worker": [PASSED, OK, OK],
    "gunicorn asgi worker": [URI_TOO_LONG, TOO_LARGE, TOO_LARGE],
    "granian": [PASSED, TOO_LARGE, OK],
}


@pytest.mark.parametrize("name", SERVE.keys())
def test_request_line_and_header_limits(name: str, log_dir: Path) -> None:
    """Gunicorn's --limit-request-line/-fields/-field_size defaults refuse oversized heads only
    under its own asgi worker (414, 431); uvicorn-worker ignores them like Uvicorn does;
    Granian refuses too many fields only."""
    with serving(SERVE[name], log_dir=log_dir) as server:
        got = [raw_request(server.port, head) for head in OVERSIZED.values()]
    assert dict(zip(OVERSIZED, got, strict=True)) == dict(
        zip(OVERSIZED, EXPECTED[name], strict=True))


def test_body_limit_middleware_refuses_before_reading(log_dir: Path) -> None:
    """The middleware answers 413 to a declared 64 MiB body before a byte of it is sent, and to
    a chunked body once 1 MiB has arrived; a small body still reaches the endpoint."""
    harness.snippet(BODY_LIMIT_APP)
    with serving("limits/uvicorn.sh:body-limit", log_dir=log_dir) as server:
        head = (f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {64 * MIB}\r\n\r\n").encode()
        assert raw_request(server.port, head) == "HTTP/1.1 413 Request Entity Too Large"

        def chunks():
            for _ in range(64):
                yield b"x" * MIB

        r = harness.http_post(server.url("/upload"), content=chunks(), timeout=60)
        assert r.status_code == 413, r.text
        r = harness.http_post(server.url("/upload"), content=b"x" * 1000, timeout=60)
        assert (r.status_code, r.json()["received"]) == (200, 1000)


# --------------------------------------------------------------------------- overload


def burst(server: harness.Server, path: str, n: int) -> list[tuple[float, int, str]]:
    """``n`` requests at once, each on its own connection: (when answered, status, body)."""
    def one(_: int) -> tuple[float, int, str]:
        r = harness.http_get(server.url(path), timeout=120)
        return time.monotonic(), r.status_code, r.text

    with ThreadPoolExecutor(n) as pool:
        return sorted(pool.map(one, range(n)))


def test_limit_concurrency_answers_503_beyond_the_limit(log_dir: Path) -> None:
    """--limit-concurrency 4: three requests run (the new connection counts too), the other four
    of a burst of seven get 503 at once, before any of the three is answered."""
    with serving("limits/uvicorn.sh:limit-concurrency", log_dir=log_dir) as server:
        answers = burst(server, "/hold?seconds=8", 7)
    statuses = [status for _, status, _ in answers]
    assert statuses == [503] * 4 + [200] * 3, answers


def test_half_sent_requests_use_up_the_limit(log_dir: Path) -> None:
    """--limit-concurrency 4: three requests whose headers are still arriving use up the limit,
    so a complete request gets 503 though nothing runs; once they finish, it gets 200."""
    with serving("limits/uvicorn.sh:limit-concurrency", log_dir=log_dir) as server:
        slow = [harness.HalfSentRequest(server) for _ in range(3)]
        harness.wait_until(lambda: {s.client_port for s in slow} <= connected_ports(server),
                           what="the server holds the three slow connections", server=server)
        assert server.get("/").status_code == 503
        assert [s.finish() for s in slow] == ["answered"] * 3
        harness.wait_until(lambda: server.get("/").status_code == 200,
                           what="a request is served again", server=server)


def test_backlog_sets_the_listen_queue(log_dir: Path) -> None:
    """--backlog is the kernel's queue of connections not yet accepted: 64 as asked, 2048 by
    default (ss shows it as Send-Q of the listening socket)."""
    harness.ensure_debian_packages("ss", ["iproute2"])
    queues = {}
    for ref in ("limits/uvicorn.sh:backlog", "limits/uvicorn.sh:serve"):
        with serving(ref, log_dir=log_dir) as server:
            out = harness.run("limits/listen_queue.sh", server=server).output.splitlines()
            listen = [line.split() for line in out if line.startswith("LISTEN")]
            assert len(listen) == 1, out
            queues[ref] = int(listen[0][2])
    assert queues == {"limits/uvicorn.sh:backlog": 64, "limits/uvicorn.sh:serve": 2048}


def test_asgi_worker_does_not_enforce_worker_connections(log_dir: Path) -> None:
    """--worker-connections 2 with the asgi worker: six requests still run at once in its one
    worker (each answers only once six are in)."""
    with serving("limits/gunicorn_asgi.sh:worker-connections", log_dir=log_dir) as server:
        server.wait_for_workers(1)
        answers = burst(server, "/together?n=6&seconds=60", 6)
    seen = [(status, body.count('"most_in_flight":6')) for _, status, body in answers]
    assert seen == [(200, 1)] * 6, answers


# --------------------------------------------------------------------------- slow clients

#: One worker each, so "/" always reaches the worker that holds the slow client.
ONE_WORKER = {
    "uvicorn": "limits/uvicorn.sh:serve",
    "gunicorn asgi worker --timeout 2": "limits/gunicorn_asgi.sh:slow-client",
    "granian": "limits/granian.sh:header-timeout",
}


SLOW_HEADERS = ["uvicorn", "gunicorn asgi worker --timeout 2"]


@pytest.mark.parametrize("command", [ONE_WORKER[k] for k in SLOW_HEADERS], ids=SLOW_HEADERS)
def test_slow_headers_hold_a_connection_not_a_worker(command: str, log_dir: Path) -> None:
    """A request whose headers trickle in holds a connection, not the worker: others are answered
    meanwhile, the same worker lives on, and 6 s later (three times the asgi worker's --timeout,
    more than Uvicorn's 5 s keep-alive) the slow request is still answered when it completes."""
    with serving(command, log_dir=log_dir) as server:
        pid = state(server)["pid"]
        slow = harness.HalfSentRequest(server)
        harness.wait_until(lambda: slow.client_port in connected_ports(server),
                           what="the server holds the slow connection", server=server)
        start = time.monotonic()
        harness.wait_until(lambda: state(server)["pid"] == pid and time.monotonic() - start > 6,
                           what="6 s of other requests answered by the same worker", server=server)
        assert slow.finish() == "answered"


def test_granian_closes_slow_headers(log_dir: Path) -> None:
    """Granian closes a connection whose headers are not complete within
    --http1-header-read-timeout (2000 ms here) without answering; the same request, opened
    earlier on a Granian with the default (30 s), is still open then and is answered."""
    (log_dir / "default").mkdir(exist_ok=True)
    with serving(SERVE["granian"], log_dir=log_dir / "default") as default, \
            serving(ONE_WORKER["granian"], log_dir=log_dir) as server:
        held = harness.HalfSentRequest(default)  # opened first: it has waited longer
        slow = harness.HalfSentRequest(server)
        slow.sock.settimeout(60)
        assert slow.sock.recv(64) == b"", "the connection is closed by the server"
        assert state(server)["in_flight"] == 0
        assert held.finish() == "answered", "the default timeout is longer than 2 s"


@pytest.mark.parametrize("command", ONE_WORKER.values(), ids=["uvicorn", "asgi worker", "granian"])
def test_slow_reader_holds_the_endpoint_not_memory(command: str, log_dir: Path) -> None:
    """A client that reads a 64 MiB response slowly keeps the endpoint running (it waits for the
    client) while the worker's memory grows by far less than the response; once the client
    reads, it gets all of it and the endpoint ends."""
    with serving(command, log_dir=log_dir) as server:
        worker = serving_processes(server)[0]
        before = worker.memory_info().rss
        with socket.create_connection((harness.HOST, server.port), timeout=60) as sock:
            sock.sendall(b"GET /download?mb=64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            harness.wait_until(lambda: state(server)["in_flight"] == 1, what="the download runs",
                               server=server)
            answered = [state(server)["in_flight"] for _ in range(50)]  # 50 requests meanwhile
            assert answered == [1] * 50, "the endpoint is still sending"
            assert worker.memory_info().rss - before < 16 * MIB
            received = 0
            while chunk := sock.recv(MIB):
                received += len(chunk)
        assert received > 64 * MIB
        harness.wait_until(lambda: state(server)["in_flight"] == 0, what="the download ended",
                           server=server)


# --------------------------------------------------------------------------- nginx in front


def test_nginx_holds_slow_headers_away_from_the_app(log_dir: Path) -> None:
    """Through nginx, a request whose headers trickle in never reaches the app server: nginx
    holds it and closes it after client_header_timeout; the same request sent straight to
    Uvicorn is still open then and is answered."""
    with serving("limits/uvicorn.sh:serve", log_dir=log_dir) as server, \
            harness.nginx(["limits/nginx.conf"], log_dir=log_dir, upstream=server.ports,
                          certificate=None) as proxy:
        direct = harness.HalfSentRequest(server)
        harness.wait_until(lambda: direct.client_port in connected_ports(server),
                           what="the server holds the direct slow connection", server=server)
        with socket.create_connection((harness.HOST, proxy.ports[80]), timeout=60) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            assert sock.recv(64) == b"", "nginx closed the slow request"
        assert connected_ports(server) == {direct.client_port}, "nginx never connected to the app"
        assert direct.finish() == "answered"


def test_nginx_buffers_the_response_for_a_slow_reader(log_dir: Path) -> None:
    """With proxy_buffering on (the default), nginx takes the whole 64 MiB response while the
    client reads nothing: the endpoint ends, and the client still gets all of it afterwards."""
    with serving("limits/uvicorn.sh:serve", log_dir=log_dir) as server, \
            harness.nginx(["limits/nginx.conf"], log_dir=log_dir, upstream=server.ports,
                          certificate=None) as proxy:
        with socket.create_connection((harness.HOST, proxy.ports[80]), timeout=60) as sock:
            sock.sendall(b"GET /download?mb=64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            harness.wait_until(lambda: state(server)["most_in_flight"] == 1,
                               what="the download starts", server=server)
            harness.wait_until(lambda: state(server)["in_flight"] == 0, timeout=60,
                               what="the endpoint ends while the client has read nothing",
                               server=server)
            received = 0
            while chunk := sock.recv(MIB):
                received += len(chunk)
        assert received > 64 * MIB


# --------------------------------------------------------------------------- where load goes

TWO_WORKERS = {
    "gunicorn + uvicorn-worker": "limits/gunicorn_uvicorn_worker.sh:serve",
    "gunicorn asgi worker": "limits/gunicorn_asgi.sh:serve",
}


@pytest.mark.parametrize("command", TWO_WORKERS.values(), ids=TWO_WORKERS.keys())
def test_a_kept_alive_connection_stays_on_one_worker(command: str, log_dir: Path) -> None:
    """Twenty requests on one kept-alive connection are all served by one worker of two."""
    with serving(command, log_dir=log_dir) as server:
        server.wait_for_workers(2)
        with server.client() as client:
            pids = {client.get("/").json()["pid"] for _ in range(20)}
        assert len(pids) == 1


@pytest.mark.parametrize("command", TWO_WORKERS.values(), ids=TWO_WORKERS.keys())
def test_new_connections_are_not_dealt_in_turn(command: str, log_dir: Path) -> None:
    """The kernel hands each new connection to a worker waiting in accept; nothing deals them
    out in turn. With one worker stopped (SIGSTOP: it cannot accept, as when a blocking call
    holds its event loop), ten new connections are all answered by the other one, at once; a
    dealer taking turns would have left every other one waiting on the stopped worker."""
    with serving(command, log_dir=log_dir) as server:
        stopped, running = server.wait_for_workers(2)
        os.kill(stopped.pid, signal.SIGSTOP)
        try:
            pids = [server.get("/", timeout=10).json()["pid"] for _ in range(10)]
        finally:
            os.kill(stopped.pid, signal.SIGCONT)
        assert pids == [running.pid] * 10, (stopped.pid, pids)
