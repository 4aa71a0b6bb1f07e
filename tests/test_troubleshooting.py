"""docs/troubleshooting.md: every log line and client error the page quotes, provoked on a real
server and compared with the quoted text.

Each quoted symptom is a file ``snippets/troubleshooting/<name>.log`` holding the lines exactly as
one run printed them. A test provokes the symptom the way the topic page does (reusing its
snippets) and checks, with :func:`assert_quoted`, that every line of the file appears in the real
output, in order, once the volatile parts of both are normalised (:data:`VOLATILE`).
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import harness

#: The volatile parts of a log line: what changes from run to run and nothing else. Each is
#: replaced by a placeholder in the quoted line and in the real output before they are compared.
VOLATILE = [
    (r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\]", "[TIME]"),  # Gunicorn's timestamp
    (r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", "TIME"),  # nginx's timestamp
    (r"\b\d+#\d+: \*\d+", "PID#TID: *CONN"),  # nginx's process, thread and connection numbers
    (r"(?<=\[)\d+(?=\])|(?<=pid:)\d+|(?<=pid: )\d+", "PID"),  # [1234], (pid:1234), pid: 1234
    (r"(?<=127\.0\.0\.1:)\d+|(?<=port )\d+", "PORT"),  # free ports (the page shows 8000, 443)
    (r"\b\d+ ms\b", "N ms"),  # curl's "after 0 ms"
    (r"\bTask-\d+\b", "Task-N"),  # asyncio's task counter
    (r"(?<=defined at )/\S+/(?=[\w.]+:\d+>)", ".../"),  # the folder the app ran from
]


def normalise(line: str) -> str:
    """``line`` with its volatile parts (:data:`VOLATILE`) replaced by placeholders."""
    line = line.rstrip()
    for pattern, placeholder in VOLATILE:
        line = re.sub(pattern, placeholder, line)
    return line


def assert_quoted(ref: str, output: str) -> None:
    """Every line of the quoted file ``ref`` appears in ``output``, in order (normalised)."""
    quoted = [normalise(ln) for ln in harness.snippet(ref).text.splitlines() if ln.strip()]
    real = [normalise(ln) for ln in output.splitlines()]
    at = 0
    for line in quoted:
        try:
            at = real.index(line, at) + 1
        except ValueError:
            raise AssertionError(
                f"snippets/{ref}: the line {line!r} (normalised) is not in the real output "
                "(after the lines matched before it); the real output, normalised:\n"
                + "\n".join("    " + ln for ln in real[-40:])) from None


def curl(url: str, timeout: float = 60) -> str:
    """What curl prints for ``url`` when the request fails (its error line, on stderr)."""
    harness.ensure_debian_packages("curl", ["curl"])
    r = subprocess.run(["curl", "--silent", "--show-error", "--max-time", str(timeout), url],
                       capture_output=True, text=True, timeout=timeout + 30)
    return r.stderr


APP = harness.snippet("troubleshooting/main.py")  # a task started and forgotten; /gc
TIMEOUTS_APP = harness.snippet("timeouts/main.py")  # /block/{s}: time.sleep in async def
PROXY_APP = harness.snippet("proxy/main.py")  # /stuck/{s} blocks, /slow/{s} awaits


# --------------------------------------------------------------------------- server log


def test_worker_timeout(log_dir: Path) -> None:
    """A blocking call in async def outlasts --timeout 2: Gunicorn logs WORKER TIMEOUT, the
    uvicorn worker dies of SIGABRT, and curl gets an empty reply."""
    with harness.serving("timeouts/gunicorn_uvicorn_worker.sh", log_dir=log_dir,
                         cwd=TIMEOUTS_APP.folder) as server:
        server.wait_for_workers(1)
        client_error = curl(server.url("/block/6"))
        server.wait_for_log(r"(?s)was sent SIGABRT!.*Booting worker")  # and its replacement
        assert_quoted("troubleshooting/worker_timeout.log", server.log())
        assert_quoted("troubleshooting/curl_empty_reply.log", client_error)


def test_worker_timeout_with_asgi_worker_says_out_of_memory(log_dir: Path) -> None:
    """The same stuck worker under Gunicorn's asgi worker class ignores the SIGABRT, so the
    master sends SIGKILL: the log says "Perhaps out of memory?" although memory was never short."""
    with harness.serving("timeouts/gunicorn_asgi_worker.sh", log_dir=log_dir,
                         cwd=TIMEOUTS_APP.folder) as server:
        server.wait_for_workers(1)
        try:
            server.get("/block/6")
        except httpx.HTTPError:
            pass  # the connection dies with the worker
        server.wait_for_log(r"(?s)Perhaps out of memory\?.*Booting worker")
        server.wait_for_workers(1)  # a TERM while the new worker boots would be ignored
        assert_quoted("troubleshooting/out_of_memory.log", server.log())


def test_h2_package_missing(tmp_path: Path, log_dir: Path) -> None:
    """Gunicorn asked for HTTP/2 (--http-protocols h2,h1) where only the quick start's packages
    are installed (no gunicorn[http2]): it refuses to start and names the h2 package."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text(harness.snippet("servers/main.py").path.read_text())
    server = harness.start("servers/gunicorn_asgi.sh:tls", log_dir=log_dir, cwd=app,
                           requirements=["quickstart/requirements.txt"])
    try:
        harness.wait_until(lambda: server.proc.poll() is not None, what="gunicorn exits",
                           timeout=60, describe=lambda: server.log()[-500:])
    finally:
        server.stop(expect_clean=False)
    assert server.proc.returncode != 0
    assert_quoted("troubleshooting/h2_missing.log", server.log())


def test_wsgi_worker_class_cannot_call_fastapi(log_dir: Path) -> None:
    """Gunicorn's default worker class, sync, is WSGI: it calls app(environ, start_response),
    FastAPI wants (scope, receive, send), so every request gets 500 and this traceback."""
    with harness.serving("servers/wsgi_workers.sh:sync", log_dir=log_dir,
                         cwd=harness.snippet("servers/main.py").folder, ready_path=None) as server:
        server.wait_for_log(r"Booting worker with pid")  # no ready_path: nothing answers 2xx
        server.wait_for_workers(1)
        assert server.get("/").status_code == 500
        server.wait_for_log(r"TypeError: FastAPI\.__call__\(\) missing")
        assert_quoted("troubleshooting/wsgi_worker.log", server.log())


def test_error_while_closing_socket_is_harmless(log_dir: Path) -> None:
    """Each uvicorn worker logs "Error while closing socket [Errno 9]" as it stops; the server
    still stops cleanly: exit code 0, nothing left behind (server.stop checks both)."""
    with harness.serving("quickstart/gunicorn_uvicorn_worker.sh", log_dir=log_dir) as server:
        server.wait_for_workers(2)
        assert server.stop() == 0
    assert server.log().count("Error while closing socket") == 2, "one line per worker"
    assert_quoted("troubleshooting/closing_socket.log", server.log())


def test_task_destroyed_but_pending(log_dir: Path) -> None:
    """A task created and not kept, waiting on a queue nothing else holds, is garbage: the
    garbage collector's next full pass (here asked for by /gc) destroys it while it is pending.
    Before the mistake, the same pass destroys nothing."""
    # A lone Uvicorn process re-raises the SIGTERM it handled: it exits with -15 once stopped.
    with harness.serving("troubleshooting/serve.sh", log_dir=log_dir, cwd=APP.folder,
                         ready_path="/docs", expect_clean=False) as server:
        with server.client() as client:
            client.post("/gc").raise_for_status()
            assert "Task was destroyed" not in server.log(), "nothing to destroy yet"
            assert client.post("/consumers").status_code == 202
            client.post("/gc").raise_for_status()
        server.wait_for_log(r"Task was destroyed but it is pending!")
    assert_quoted("troubleshooting/task_destroyed.log", server.log())


# --------------------------------------------------------------------------- proxy log


@contextmanager
def behind_nginx(log_dir: Path) -> Iterator[tuple[harness.Server, harness.Nginx]]:
    """The proxy page's app and Gunicorn command (--timeout 10) behind its nginx config
    (proxy_read_timeout 30s)."""
    with harness.serving("proxy/gunicorn_uvicorn_worker.sh:behind-nginx", log_dir=log_dir,
                         cwd=PROXY_APP.folder, expect_clean=False, ready_timeout=90) as server:
        with harness.nginx(["proxy/fastapi.conf"], log_dir=log_dir,
                           upstream=server.ports) as nginx:
            yield server, nginx


def test_502_when_the_app_server_is_down(log_dir: Path) -> None:
    """Nothing listens on the upstream port (the app server is stopped): nginx answers 502 and
    logs connect() failed (111: Connection refused)."""
    with behind_nginx(log_dir) as (server, nginx):
        server.stop(expect_clean=False)
        with nginx.client() as client:
            assert client.get("/").status_code == 502
        assert_quoted("troubleshooting/nginx_refused.log", nginx.log())


def test_502_when_a_worker_is_killed_mid_request(log_dir: Path) -> None:
    """A worker killed by Gunicorn's --timeout (10 s) while nginx waits for its answer: nginx
    answers 502 and logs "upstream prematurely closed connection"."""
    with behind_nginx(log_dir) as (server, nginx):
        with nginx.client() as client:
            assert client.get("/stuck/20").status_code == 502
        server.wait_for_log(r"WORKER TIMEOUT")
        assert_quoted("troubleshooting/nginx_prematurely_closed.log", nginx.log())


def test_504_when_the_app_is_slower_than_proxy_read_timeout(log_dir: Path) -> None:
    """An endpoint that awaits 40 s, longer than proxy_read_timeout (30 s): nginx answers 504
    and logs "upstream timed out (110: Connection timed out)"; the worker is not killed."""
    with behind_nginx(log_dir) as (server, nginx):
        with nginx.client() as client:
            assert client.get("/slow/40").status_code == 504
        assert_quoted("troubleshooting/nginx_timed_out.log", nginx.log())
        assert "WORKER TIMEOUT" not in server.log()


# --------------------------------------------------------------------------- client


def test_connection_reset_then_refused_during_a_deploy(log_dir: Path) -> None:
    """uvicorn --workers stopped (TERM) while a request is in flight: a new connection waits,
    unanswered, and is reset when the server exits; once it has exited, connections are refused."""
    with harness.serving("timeouts/uvicorn_workers.sh", log_dir=log_dir,
                         cwd=TIMEOUTS_APP.folder, expect_clean=False) as server:
        server.wait_for_workers(2)
        in_flight, _ = harness.in_background(server.get, "/await/8")
        server.wait_for_log(r"in flight: 8")
        server.send_signal(signal.SIGTERM)
        server.wait_for_log(r"(?s)Shutting down.*Shutting down")  # both workers stopped accepting
        waiting, box = harness.in_background(curl, server.url("/"))
        server.proc.wait(60)
        waiting.join(60)
        in_flight.join(30)
        assert_quoted("troubleshooting/curl_reset.log", box["result"])
        assert_quoted("troubleshooting/curl_refused.log", curl(server.url("/")))


# Every quoted file is named here, so tests/test_docs.py knows a test compares it.
QUOTED = [
    "troubleshooting/worker_timeout.log", "troubleshooting/curl_empty_reply.log",
    "troubleshooting/out_of_memory.log", "troubleshooting/h2_missing.log",
    "troubleshooting/wsgi_worker.log",
    "troubleshooting/closing_socket.log", "troubleshooting/task_destroyed.log",
    "troubleshooting/nginx_refused.log", "troubleshooting/nginx_prematurely_closed.log",
    "troubleshooting/nginx_timed_out.log", "troubleshooting/curl_reset.log",
    "troubleshooting/curl_refused.log",
]


def test_normalise_touches_only_the_volatile_parts() -> None:
    """The normaliser replaces timestamps, PIDs, ports and counters, and keeps every word."""
    line = "[2026-12-07 21:06:37 +0000] [16541] [CRITICAL] WORKER TIMEOUT (pid:16552)"
    assert normalise(line) == "[TIME] [PID] [CRITICAL] WORKER TIMEOUT (pid:PID)"
    assert normalise(line) != normalise(line.replace("TIMEOUT", "TIME OUT"))
    for ref in QUOTED:
        assert harness.snippet(ref).text.strip(), f"snippets/{ref} is empty"
