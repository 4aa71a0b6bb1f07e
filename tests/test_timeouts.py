"""docs/timeouts.md: every timeout a request meets, each watched firing (or not) on a real server.

Timings are short (a 2-second ``--timeout``, 1-second keep-alive) so the file runs in seconds.
Tests compare durations with the configured values and with each other, with wide margins;
they never assert how long something took on this machine.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
import services

APP = harness.snippet("timeouts/main.py")  # every server below serves main:app from this folder
harness.snippet("timeouts/request_timeout.py")  # imported by bounded.py
harness.snippet("timeouts/bounded.py")

GUNICORN = {
    "uvicorn-worker": "timeouts/gunicorn_uvicorn_worker.sh",
    "asgi": "timeouts/gunicorn_asgi_worker.sh",
}
#: How Gunicorn's log reports the end of a worker that missed its heartbeat, by worker class.
#: The uvicorn worker dies of the SIGABRT at once; the asgi worker handles SIGABRT in its
#: event loop, which is blocked, so the master sends SIGKILL on its next round.
KILLED_BY = {
    "uvicorn-worker": r"Worker \(pid:{pid}\) was sent SIGABRT!",
    "asgi": r"Worker \(pid:{pid}\) was sent SIGKILL! Perhaps out of memory\?",
}
TIMEOUT = 2  # the --timeout in the commands above


# --------------------------------------------------------------------------- helpers


timed_get = harness.timed_outcome  # (status and body, or the exception name; seconds)
in_background = harness.in_background


# --------------------------------------------------------------------------- Gunicorn --timeout


@pytest.mark.parametrize("worker_class", GUNICORN)
def test_timeout_spares_awaiting_and_def_endpoints(worker_class: str, log_dir: Path) -> None:
    """A 4 s await and a 4 s def endpoint, at once, on one worker with --timeout 2: both answer,
    and the worker is neither killed nor replaced: its event loop kept sending the heartbeat."""
    with harness.serving(GUNICORN[worker_class], log_dir=log_dir, cwd=APP.folder) as server:
        [worker] = server.wait_for_workers(1)
        slow = 2 * TIMEOUT
        awaiting, a_box = in_background(timed_get, server, f"/await/{slow}")
        in_thread, t_box = in_background(timed_get, server, f"/thread/{slow}")
        awaiting.join(30)
        in_thread.join(30)
        for box in (a_box, t_box):
            outcome, elapsed = box["result"]
            assert outcome == (200, {"pid": worker.pid}), outcome
            assert elapsed >= slow * 0.9  # it really took longer than --timeout
        assert [w.pid for w in server.workers()] == [worker.pid]
        assert "WORKER TIMEOUT" not in server.log()


@pytest.mark.parametrize("worker_class", GUNICORN)
def test_blocking_call_in_async_def_gets_the_worker_killed(
    worker_class: str, log_dir: Path
) -> None:
    """time.sleep(6) inside async def with --timeout 2: the loop stops, so does the heartbeat,
    and the master kills the worker mid-request; the client gets no response at all."""
    with harness.serving(GUNICORN[worker_class], log_dir=log_dir, cwd=APP.folder) as server:
        [worker] = server.wait_for_workers(1)
        blocked = 3 * TIMEOUT
        outcome, elapsed = timed_get(server, f"/block/{blocked}")
        assert outcome in {"RemoteProtocolError", "ReadError"}, (
            outcome
        )  # connection closed, no answer
        assert elapsed < blocked, "the request was cut before the blocking call returned"
        log = server.wait_for_log(KILLED_BY[worker_class].format(pid=worker.pid)).string
        assert f"WORKER TIMEOUT (pid:{worker.pid})" in log
        [replacement] = server.wait_for_workers(1)
        assert replacement.pid != worker.pid
        assert server.get("/").json() == {"pid": replacement.pid}


def slow_upload(server: harness.Server, seconds: float) -> tuple[dict, float]:
    """POST a body of 64 KiB chunks, one every half second, for ``seconds``: a slow client."""
    chunks = int(seconds / 0.5)

    def body() -> Iterator[bytes]:
        for _ in range(chunks):
            yield b"x" * 65536
            time.sleep(0.5)  # the client's pace: this is what makes the upload slow

    start = time.monotonic()
    with server.client(timeout=60) as client:
        r = client.post("/upload", content=body())
    r.raise_for_status()
    return {**r.json(), "sent": chunks * 65536}, time.monotonic() - start


def slow_download(server: harness.Server, seconds: float, megabytes: int) -> dict:
    """GET a large body through a small receive buffer, reading a little at a time for
    ``seconds``, then the rest at full speed. Says how much had arrived when the slow
    part ended, so the test can tell the server was still sending (held by the client)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.settimeout(60)
    sock.connect((harness.HOST, server.port))
    request = f"GET /download/{megabytes} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    sock.sendall(request.encode())
    data = bytearray()
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        chunk = sock.recv(16384)
        if not chunk:
            break
        data += chunk
        time.sleep(0.05)  # the client's pace: this is what makes the download slow
    during = len(data)
    while chunk := sock.recv(1 << 20):
        data += chunk
    sock.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    pid = re.search(rb"(?i)x-pid: (\d+)", head)
    return {"status": head.split(b" ", 2)[1], "pid": int(pid[1]) if pid else None,
            "body": len(body), "received_slowly": during,
            "took": time.monotonic() - start}


@pytest.mark.parametrize("worker_class", GUNICORN)
def test_timeout_spares_slow_uploads_and_downloads(worker_class: str, log_dir: Path) -> None:
    """With --timeout 2, an upload the client sends over 6 s and a download the client reads
    over 6 s both complete, on the same worker: waiting for a slow client is awaited I/O, and
    the heartbeat goes on. No WORKER TIMEOUT."""
    with harness.serving(GUNICORN[worker_class], log_dir=log_dir, cwd=APP.folder) as server:
        [worker] = server.wait_for_workers(1)
        slow = 3 * TIMEOUT
        uploading, up_box = in_background(slow_upload, server, slow)
        downloading, down_box = in_background(slow_download, server, slow, 16)
        uploading.join(60)
        downloading.join(60)
        uploaded, took = up_box["result"]
        assert uploaded["received"] == uploaded["sent"] and uploaded["pid"] == worker.pid, uploaded
        assert took >= slow * 0.9, "the upload really lasted longer than --timeout"
        down = down_box["result"]
        assert down["status"] == b"200" and down["pid"] == worker.pid, down
        assert down["body"] == 16 * 2**20, down
        assert down["received_slowly"] < down["body"] / 2, "the server was still sending after 6 s"
        assert [w.pid for w in server.workers()] == [worker.pid]
        assert "WORKER TIMEOUT" not in server.log()


def test_uvicorn_supervisor_does_not_kill_a_blocked_worker(log_dir: Path) -> None:
    """uvicorn --workers pings each worker from a separate thread, which answers while the
    event loop is blocked: with a 2 s health-check timeout, a 4 s blocking call, a 4 s await
    and a 4 s def endpoint, all at once, all answer and no worker is replaced."""
    with harness.serving("timeouts/uvicorn_workers.sh", log_dir=log_dir, cwd=APP.folder) as server:
        before = {w.pid for w in server.wait_for_workers(2)}
        mark = len(server.log())
        slow = 2 * TIMEOUT
        requests = [
            in_background(timed_get, server, f"/{kind}/{slow}")
            for kind in ("block", "await", "thread")
        ]
        for thread, box in requests:
            thread.join(40)
            outcome, elapsed = box["result"]
            assert outcome[0] == 200 and outcome[1]["pid"] in before, outcome
            assert elapsed >= slow * 0.9
        harness.observe_for(1, "a health-check round after the requests")
        assert {w.pid for w in server.workers()} == before
        assert "died" not in server.log()[mark:]


# --------------------------------------------------------------------------- app-level timeout


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    """bounded:app (main:app behind RequestTimeout(seconds=1)) under Gunicorn, one worker."""
    log_dir = tmp_path_factory.mktemp("bounded")
    with harness.serving("timeouts/bounded.sh", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(1)
        yield server


def test_request_timeout_cuts_awaiting_code_with_504(bounded: harness.Server) -> None:
    outcome, elapsed = timed_get(bounded, "/await/5")
    assert outcome == (504, "request timed out\n")  # the await would have answered 200


def test_request_timeout_cannot_interrupt_a_blocking_call(bounded: harness.Server) -> None:
    """The deadline cannot fire while time.sleep holds the loop; the endpoint then finishes
    without yielding, so the client gets a 200 after the full 3 s, not a 504 after 1 s."""
    outcome, elapsed = timed_get(bounded, "/block/3")
    assert outcome[0] == 200, outcome
    assert elapsed >= 3 * 0.95


def test_request_timeout_answers_but_the_thread_runs_on(bounded: harness.Server) -> None:
    """A def endpoint: the client gets its 504 after 1 s, but a thread cannot be cancelled:
    it runs its full 3 s, and meanwhile the thread pool no longer counts it as busy."""
    mark = len(bounded.log())
    outcome, _ = timed_get(bounded, "/thread/3")
    assert outcome == (504, "request timed out\n")
    # The order proves it, not a clock: the 504 arrived while the thread was still running.
    assert "def endpoint finished" not in bounded.log()[mark:], "the thread is still running"
    assert bounded.get("/threads-busy").json() == {"busy": 0}, "its slot was given back"
    bounded.wait_for_log(r"def endpoint finished after 3\.0s", start=mark)


# --------------------------------------------------------------------------- keep-alive


def read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body, read from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return head


REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
KEEP_ALIVE_COMMANDS = "timeouts/keep_alive.sh"
KEEP_ALIVE = 1  # seconds, in every command of keep_alive.sh


@pytest.mark.parametrize("section", ["uvicorn-worker", "asgi", "uvicorn"])
def test_idle_keep_alive_connection_is_closed(section: str, log_dir: Path) -> None:
    """After a response, the connection stays open for the next request, and the server closes
    it once it has been idle for the keep-alive timeout. A connection that never sends a
    request is not timed out by it: the timer only starts after a response."""
    ref = f"{KEEP_ALIVE_COMMANDS}:{section}"
    with harness.serving(ref, log_dir=log_dir, cwd=APP.folder) as server:
        address = (harness.HOST, server.port)
        with socket.create_connection(address) as conn, socket.create_connection(address) as silent:
            connected = time.monotonic()
            conn.sendall(REQUEST)
            assert read_response(conn).startswith(b"HTTP/1.1 200")
            conn.sendall(REQUEST)  # reused at once: the connection is alive
            assert read_response(conn).startswith(b"HTTP/1.1 200")
            idle_since = time.monotonic()
            conn.settimeout(15)
            try:
                closed = conn.recv(1) == b""
            except TimeoutError:
                pytest.fail("the server kept the idle connection open for 15 s "
                            f"(keep-alive timeout {KEEP_ALIVE} s)")
            assert closed, "the server closed the idle connection"
            idle_for = time.monotonic() - idle_since
            assert idle_for >= KEEP_ALIVE * 0.5, f"closed after {idle_for:.2f}s, before its timeout"
            assert idle_for < 4 * KEEP_ALIVE, "the configured 1 s, not Uvicorn's 5 s default"

            wait = max(0.0, 3 * KEEP_ALIVE - (time.monotonic() - connected))
            silent.settimeout(wait + 0.5)
            with pytest.raises(TimeoutError):
                silent.recv(1)  # still open (recv would return b"" if the server had closed it)
        if section == "uvicorn":
            # A lone uvicorn process re-raises the SIGTERM it handled once it has shut down
            # gracefully, so it ends "killed by SIGTERM" rather than with exit code 0.
            assert server.stop(expect_clean=False) in (0, -signal.SIGTERM)
            assert not server.processes()


# --------------------------------------------------------------------- Uvicorn graceful shutdown


def test_timeout_graceful_shutdown_cuts_long_requests(log_dir: Path) -> None:
    """uvicorn --timeout-graceful-shutdown 2: on SIGTERM a 1 s request finishes, a 6 s request
    is cut about 2 s later, and the server exits cleanly."""
    with harness.serving(
        "timeouts/graceful_shutdown.sh", log_dir=log_dir, cwd=APP.folder
    ) as server:
        mark = len(server.log())
        short, s_box = in_background(timed_get, server, "/await/1")
        long, l_box = in_background(timed_get, server, "/await/6")
        harness.wait_until(lambda: server.log()[mark:].count("in flight: ") == 2,
                           what="both requests are in flight", timeout=30, server=server)
        # A lone uvicorn process re-raises the SIGTERM it handled once it has shut down, so it
        # ends "killed by SIGTERM" (-15) rather than with exit code 0.
        assert server.stop(expect_clean=False) in (0, -signal.SIGTERM)
        assert not server.processes()
        short.join(30)
        long.join(30)
        assert s_box["result"][0][0] == 200
        outcome, elapsed = l_box["result"]
        assert outcome in {"RemoteProtocolError", "ReadError"} or outcome[0] >= 500, outcome
        assert "timeout graceful shutdown exceeded" in server.log()


# --------------------------------------------------------------------------- database


@pytest.fixture
def database_url(log_dir: Path) -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 and a free port; its URL."""
    with services.postgresql(log_dir) as url:
        yield url


def test_statement_timeout_cancels_the_query_not_the_connection(
    database_url: str, log_dir: Path
) -> None:
    """PostgreSQL itself cancels a statement that runs past statement_timeout; the session
    survives and runs the next statement."""
    if shutil.which("psql") is None:
        harness.ensure_debian_packages("psql", ["postgresql-client"])
    result = harness.run(
        "timeouts/statement_timeout.sh",
        env={"DATABASE_URL": database_url},
        check=False,
        log_dir=log_dir,
    )
    assert "canceling statement due to statement timeout" in result.output, result.output
    assert "still connected" in result.output, result.output
