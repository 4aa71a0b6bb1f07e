"""docs/servers.md: worker classes and servers, every cell of the comparison table checked.

The table on the page is rendered from ``snippets/servers/matrix.yml``. Each cell there names
the test that proves it; every test below that observes a cell calls :func:`check_cell`, which
fails when what the real server did differs from what the table says.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import websockets
import yaml

import harness
from tools import snippets as addresses

APP = harness.snippet("servers/main.py")  # every server command below serves main:app
MATRIX = yaml.safe_load(harness.snippet("servers/matrix.yml").text)
#: Every command on the page runs in an environment built only from the page's requirements.
REQUIREMENTS = "servers/requirements.txt"


@dataclass(frozen=True)
class Row:
    """One server of the comparison table and the snippet file that holds its commands."""

    file: str
    kind: str  # how its workers show readiness: gunicorn, uvicorn, hypercorn, granian, daphne

    def ref(self, section: str) -> str:
        return f"{self.file}:{section}"


ROWS = {
    "uvicorn": Row("servers/uvicorn.sh", "uvicorn"),
    "gunicorn-uvicorn-worker": Row("servers/gunicorn_uvicorn_worker.sh", "gunicorn"),
    "gunicorn-asgi": Row("servers/gunicorn_asgi.sh", "gunicorn"),
    "hypercorn": Row("servers/hypercorn.sh", "hypercorn"),
    "granian": Row("servers/granian.sh", "granian"),
    "daphne": Row("servers/daphne.sh", "daphne"),
    "fastapi-run": Row("servers/fastapi_run.sh", "uvicorn"),
}
#: Rows whose command has no TLS option: the page's TLS command is refused, so the other
#: columns of the TLS test are observed over plain HTTP with the row's "serve" command.
NO_TLS_OPTION = {"fastapi-run": "--ssl-keyfile"}
#: Rows whose command has no request-count limit: the page's (or the usual) option is refused.
NO_RECYCLE_OPTION = {"granian": "--max-requests", "daphne": "--max-requests",
                     "fastapi-run": "--limit-max-requests"}
#: Which test observes each column (matrix.yml must name the same one for every tested cell).
COLUMN_TESTS = {
    "fastapi": "test_tls_http2_websocket_lifespan",
    "tls": "test_tls_http2_websocket_lifespan",
    "http2": "test_tls_http2_websocket_lifespan",
    "websocket": "test_tls_http2_websocket_lifespan",
    "lifespan": "test_tls_http2_websocket_lifespan",
    "respawn": "test_worker_death_and_sighup",
    "reload": "test_worker_death_and_sighup",
    "recycle": "test_recycle_after_n_requests",
    "timeout": "test_stuck_worker_and_slow_request",
}


#: Cells observed by a test of their own instead of the column's test.
CELL_TESTS = {
    ("granian", "reload"): "test_granian_reload_does_not_wait_for_new_workers",
    ("fastapi-run", "reload"): "test_fastapi_run_abandons_a_reload_when_startup_takes_over_5_s",
}


#: `fastapi run` cannot raise Uvicorn's 5 s worker health check, and each of its workers first
#: re-imports the FastAPI CLI: on this test machine, shared by parallel test runs, that took
#: longer than 5 s and the workers were killed in a loop. Its servers run at a higher CPU
#: priority so that the tests observe the server rather than the machine's load.
NICE = {"servers/fastapi_run.sh": -20}


def serving(ref: str, **kwargs):
    """harness.serving, at the CPU priority NICE gives the command's file."""
    nice = NICE.get(addresses.parse(ref).file)
    if nice is not None:
        kwargs.setdefault("ready_timeout", 90)
    return harness.serving(ref, nice=nice, **kwargs)


def check_cell(row: str, column: str, observed: str) -> None:
    """What the real server did must be what the table on the page says."""
    cell = MATRIX["rows"][row]["cells"][column]
    assert observed == cell["value"], (
        f"snippets/servers/matrix.yml: rows.{row}.cells.{column} says {cell['value']!r}, "
        f"but the server did {observed!r}: update the cell, re-render the table "
        f"(snippets/servers/render.sh) and the page text around it"
    )


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A folder holding the page's app and a fresh certificate made by the page's command."""
    folder = tmp_path / "app"
    folder.mkdir()
    shutil.copy(APP.path, folder / "main.py")
    return folder


@pytest.fixture
def tls_dir(app_dir: Path, log_dir: Path) -> Path:
    harness.run("servers/make_cert.sh", cwd=app_dir, log_dir=log_dir)
    for name in ("server.key", "server.pem", "client.pem"):
        assert (app_dir / name).is_file(), name
    return app_dir


def ready_workers(server: harness.Server, kind: str) -> set[int]:
    """Worker PIDs that run now and whose log says they serve."""
    alive = {p.pid for p in server.workers()}
    log = server.log()
    if kind in ("gunicorn", "uvicorn"):
        return alive & server.ready_worker_pids()
    if kind == "hypercorn":
        return alive & {int(m) for m in re.findall(r"\[(\d+)\] \[INFO\] Running on", log)}
    if kind == "granian":
        latest: dict[str, int] = {}
        ready = set()
        for line in log.splitlines():
            if m := re.search(r"Spawning worker-(\d+) with PID: (\d+)", line):
                latest[m[1]] = int(m[2])
            elif (m := re.search(r"Started worker-(\d+)", line)) and m[1] in latest:
                ready.add(latest[m[1]])
        return alive & ready
    return set()  # daphne: one process, no workers


def wait_workers(server: harness.Server, kind: str, count: int, timeout: float = 30,
                 gone: set[int] = frozenset()) -> set[int]:
    """Wait until exactly ``count`` workers run, all ready, none of them in ``gone``."""
    seen: dict[str, set[int]] = {"alive": set(), "ready": set()}

    def settled() -> set[int] | None:
        seen["alive"] = alive = {p.pid for p in server.workers()}
        seen["ready"] = ready_workers(server, kind)
        return alive if len(alive) == count and alive == seen["ready"] and not alive & gone \
            else None

    return harness.wait_until(
        settled, what=f"{count} ready workers, none of {sorted(gone)}", timeout=timeout,
        interval=0.1, server=server,
        describe=lambda: f"alive {sorted(seen['alive'])}, ready {sorted(seen['ready'])}")


def wait_exit(server: harness.Server, timeout: float) -> int | None:
    """The server's exit code if it exits within ``timeout`` seconds, else None."""
    try:
        harness.wait_until(lambda: server.proc.poll() is not None, what="the server exits",
                           timeout=timeout, interval=0.1)
    except harness.HarnessError:
        return None
    return server.proc.returncode


def pid_of(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["pid"]


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize("row", ROWS)
def test_tls_http2_websocket_lifespan(row: str, tls_dir: Path, log_dir: Path) -> None:
    """Over HTTPS with a certificate from the page's command: FastAPI answers, the client
    verifies the certificate, HTTP/2 is negotiated or not, WebSocket echoes, lifespan ran."""
    cfg = ROWS[row]
    ca = str(tls_dir / "client.pem")
    if row in NO_TLS_OPTION:
        assert_option_unknown(cfg.ref("tls"), NO_TLS_OPTION[row], tls_dir, log_dir)
        check_cell(row, "tls", "no")
        with serving(cfg.ref("serve"), log_dir=log_dir, cwd=tls_dir) as server:
            wait_workers(server, cfg.kind, 2)
            # No TLS, so no ALPN; and a client that starts HTTP/2 in cleartext is refused.
            with pytest.raises(httpx.HTTPError), server.client(http1=False, http2=True) as c:
                c.get("/")
            check_cell(row, "http2", "no")
            fastapi_lifespan_websocket(row, server, None)
        return
    with serving(cfg.ref("tls"), log_dir=log_dir, cwd=tls_dir, scheme="https",
                         verify=ssl.create_default_context(cafile=ca)) as server:
        if cfg.kind != "daphne":
            wait_workers(server, cfg.kind, 2)

        # TLS, verified against the CA that make_cert.sh wrote, and FastAPI's answer.
        with server.client(http2=True) as client:
            r = client.get("/")
            assert r.status_code == 200 and "pid" in r.json(), r.text
            check_cell(row, "tls", "yes")
            http2 = "yes" if r.http_version == "HTTP/2" else "no"
            check_cell(row, "http2", http2)
        # The reader's curl check agrees with httpx about the protocol version.
        out = harness.run("servers/check_http_version.sh", server=server, cwd=tls_dir).output
        assert out.strip() == ("2" if http2 == "yes" else "1.1"), out
        fastapi_lifespan_websocket(row, server, ca)


def assert_option_unknown(ref: str, option: str, cwd: Path, log_dir: Path) -> None:
    """The page's command exits at once: the server has no such option."""
    result = harness.run(ref, cwd=cwd, check=False, log_dir=log_dir, ports=harness.port_map())
    assert result.returncode == 2, result.output
    assert re.search(rf"No such option:? '?{re.escape(option)}|unrecognized arguments: "
                     rf"{re.escape(option)}", result.output), result.output


def fastapi_lifespan_websocket(row: str, server: harness.Server, ca: str | None) -> None:
    """FastAPI answers, its lifespan startup ran or not, and a WebSocket echoes."""
    with server.client() as client:
        r = client.get("/")
        assert r.status_code == 200 and "pid" in r.json(), r.text
        check_cell(row, "fastapi", "yes")
        lifespan = client.get("/lifespan").json()["lifespan_ran"]
        check_cell(row, "lifespan", "yes" if lifespan else "no")

    async def echo() -> str:
        context = ssl.create_default_context(cafile=ca) if ca else None
        url = server.url("/ws").replace("https://", "wss://").replace("http://", "ws://")
        async with websockets.connect(url, ssl=context, open_timeout=10) as ws:
            await ws.send("hello")
            return await asyncio.wait_for(ws.recv(), 10)

    reply = asyncio.run(echo())
    assert re.fullmatch(r"\d+:hello", reply), reply
    check_cell(row, "websocket", "yes")


def kill_a_worker(server: harness.Server, kind: str) -> str:
    """SIGKILL one worker; "yes" if the parent replaces it and keeps serving, "exits" if the
    whole server stops."""
    before = wait_workers(server, kind, 2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def outcome() -> str | None:
        if server.proc.poll() is not None:
            return "exits"
        alive = {p.pid for p in server.workers()}
        if victim not in alive and len(alive) == 2 and alive <= ready_workers(server, kind):
            return "yes"
        return None

    seen = harness.wait_until(outcome, what=f"worker {victim} is replaced or the server exits",
                              timeout=30, interval=0.1, describe=lambda: server.log()[-2000:])
    if seen == "yes":
        assert server.get("/").status_code == 200
    return seen


def stopping(server: harness.Server, pid: int) -> bool:
    """The worker has exited, or says it is draining its open connections (the asgi worker)."""
    return not psutil.pid_exists(pid) or bool(
        re.search(rf"\[{pid}\] \[INFO\] Waiting for \d+ connections? to finish", server.log()))


def reload_with_sighup(server: harness.Server, kind: str) -> str:
    """SIGHUP the main process and watch two kinds of request across the switch.

    Certain, not a race: one request per old worker is still arriving (its headers half
    sent on a connection that worker has accepted) when the reload starts. Once every old
    worker has been replaced, the rest is sent. "yes" if each of those is answered, "drops" if
    each connection was closed unanswered: the server drops what it has not fully read.

    Meanwhile a client keeps sending whole requests on new connections: none may fail,
    except, on a server that drops, by the same closing (a request that happened to be
    arriving as its worker stopped). No connection is ever refused.
    """
    before = wait_workers(server, kind, 2)
    arriving = harness.hold_one_connection_per_worker(server, before)
    try:
        failures: list[str] = []
        served = 0
        stop = threading.Event()

        def traffic() -> None:
            nonlocal served
            while not stop.is_set():
                try:
                    r = server.get("/", timeout=30)
                    if r.status_code != 200:
                        failures.append(f"HTTP {r.status_code}")
                    served += 1
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)

        client = threading.Thread(target=traffic, daemon=True)
        client.start()
        try:
            server.send_signal(signal.SIGHUP)
            harness.wait_until(lambda: all(stopping(server, pid) for pid in before),
                               what="every old worker has exited or is draining", timeout=45,
                               server=server, describe=lambda: server.log()[-600:])
            outcomes = {half.finish() for half in arriving}
            arriving.close()
            after = wait_workers(server, kind, 2, timeout=45, gone=before)
        finally:
            stop.set()
            client.join(40)
    finally:
        arriving.close()
    assert server.proc.poll() is None, "the server is still running"
    assert not after & before and served > 0
    assert len(outcomes) == 1, f"old workers disagree on a half-sent request: {outcomes}"
    drops = outcomes == {"closed unanswered"}
    unanswered = ("RemoteProtocolError: Server disconnected", "ReadError: [Errno 104]")
    allowed = [f for f in failures if drops and f.startswith(unanswered)]
    assert failures == allowed, f"requests failed during the reload: {failures}"
    return "drops" if drops else "yes"


@pytest.mark.parametrize("row", ROWS)
def test_worker_death_and_sighup(row: str, app_dir: Path, log_dir: Path) -> None:
    """SIGHUP the server (are all workers replaced without a failed request?), then SIGKILL one
    worker (is it replaced?)."""
    cfg = ROWS[row]
    with serving(cfg.ref("serve"), log_dir=log_dir, cwd=app_dir) as server:
        if cfg.kind == "daphne":
            # One process and no worker processes: nothing restarts anything...
            assert server.workers() == []
            check_cell(row, "respawn", "no")
            # ...and SIGHUP, which Daphne does not handle, ends it.
            server.send_signal(signal.SIGHUP)
            assert wait_exit(server, 15) == -signal.SIGHUP
            server.stop(expect_clean=False)
            check_cell(row, "reload", "no")
            return
        if (row, "reload") not in CELL_TESTS:
            check_cell(row, "reload", reload_with_sighup(server, cfg.kind))
        respawn = kill_a_worker(server, cfg.kind)
        if respawn == "exits":
            server.stop(expect_clean=False)
        check_cell(row, "respawn", respawn)


def reload_is_abandoned(server: harness.Server, timeout: float, abort_timeout: float) -> set[int]:
    """SIGHUP a Uvicorn parent whose app starts slower than its 5 s worker health check: the
    newcomer is killed, the restart aborted, and the same two old workers serve on. Returns
    their PIDs."""
    before = wait_workers(server, "uvicorn", 2, timeout=timeout)
    server.wait_for_log(r"(?s)Application startup complete.*Application startup complete",
                        timeout=timeout)
    server.send_signal(signal.SIGHUP)
    # \s+: fastapi run's log (Rich) may wrap the line, as fastapi-cli 0.0.24 does at 80 columns
    m = server.wait_for_log(r"New\s+child\s+process\s+\[(\d+)\]\s+was\s+not\s+ready\s+in\s+time;"
                            r"\s+keeping\s+worker\s+\[(\d+)\]\s+and\s+aborting\s+the\s+restart",
                            timeout=abort_timeout)
    assert int(m[2]) in before
    wait_workers(server, "uvicorn", 2, gone={int(m[1])})
    assert {p.pid for p in server.workers()} == before, "the old workers still serve"
    return before


def test_uvicorn_reload_keeps_old_workers_when_new_ones_start_slowly(app_dir: Path,
                                                                    log_dir: Path) -> None:
    """On SIGHUP Uvicorn waits --timeout-worker-healthcheck (5 s) for each new worker to finish
    startup; an app that needs 8 s makes it kill the newcomer and keep the old workers."""
    with harness.serving("servers/uvicorn_slow_start.sh", log_dir=log_dir, cwd=app_dir,
                         ready_timeout=60) as server:
        before = reload_is_abandoned(server, timeout=60, abort_timeout=40)
        assert pid_of(server.get("/")) in before


def test_granian_reload_does_not_wait_for_new_workers(app_dir: Path, log_dir: Path) -> None:
    """On SIGHUP Granian stops each old worker --respawn-interval (3.5 s) after spawning its
    replacement, ready or not; the master holds no listening socket, so while an app that needs
    8 s to start is starting, connections are refused."""
    with harness.serving("servers/granian.sh:slow-start", log_dir=log_dir, cwd=app_dir,
                         ready_timeout=60) as server:
        before = wait_workers(server, "granian", 1, timeout=60)
        server.send_signal(signal.SIGHUP)
        refused = []

        def served_after_refusals() -> bool:
            try:
                return server.get("/", timeout=30).status_code == 200 and bool(refused)
            except httpx.ConnectError as exc:
                refused.append(exc)
                return False

        # Refused while the new worker starts, then served by it: both must be seen.
        harness.wait_until(served_after_refusals, what="connections are refused during the "
                           "reload, then the new worker serves", timeout=60, interval=0.2,
                           server=server, describe=lambda: f"{len(refused)} refused so far")
        wait_workers(server, "granian", 1, gone=before)
        check_cell("granian", "reload", "timed")


def test_granian_respawns_only_when_asked(app_dir: Path, log_dir: Path) -> None:
    """Without --respawn-failed-workers, Granian shuts down when one worker dies."""
    with harness.serving("servers/granian.sh:default", log_dir=log_dir, cwd=app_dir) as server:
        assert kill_a_worker(server, "granian") == "exits"
        assert server.stop(expect_clean=False) != 0, "and it exits with an error status"
        assert "Respawning" not in server.log()


@pytest.mark.parametrize("row", ROWS)
def test_recycle_after_n_requests(row: str, app_dir: Path, log_dir: Path) -> None:
    """With a limit of 5 requests per worker, requests soon meet a third worker PID."""
    cfg = ROWS[row]
    if row in NO_RECYCLE_OPTION:
        # No request-count limit exists: the command line rejects one.
        option = NO_RECYCLE_OPTION[row]
        if "[start:recycle]" in harness.snippet(cfg.file).path.read_text("utf-8"):
            assert_option_unknown(cfg.ref("recycle"), option, app_dir, log_dir)
        else:  # the page shows no such command; ask the reader's install directly
            server = harness.reader_env("servers").bin / cfg.kind
            r = subprocess.run([server, "main:app", option, "5"], cwd=app_dir,
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 2, r
            assert re.search(rf"No such option '{option}'|unrecognized arguments: {option}",
                             r.stderr), r.stderr
        check_cell(row, "recycle", "no")
        return
    with serving(cfg.ref("recycle"), log_dir=log_dir, cwd=app_dir) as server:
        first = wait_workers(server, cfg.kind, 2)
        # Each first worker holds a request still arriving (half-sent headers) as it recycles.
        arriving = harness.hold_one_connection_per_worker(server, first)
        seen, failures = [], []

        def ask() -> None:
            r = pid_or_failure(server)
            (seen if isinstance(r, int) else failures).append(r)
            time.sleep(0.2)  # spaced: Gunicorn's asgi worker notices its limit once a second

        finished: dict[int, str] = {}
        try:
            while len(finished) < len(first) and len(seen) < 60:
                ask()
                # Finish a held request as soon as its worker stops (well inside the graceful
                # timeout, however slowly the other worker reaches its limit). A draining asgi
                # worker still counts as one of the two: the master replaces it only once it
                # has answered (or closed) what it holds.
                for pid in first - finished.keys():
                    if stopping(server, pid):
                        finished[pid] = arriving[pid].finish()
            assert len(finished) == len(first), (
                f"{len(seen)} requests, limit 5 per worker, the first workers {first} still run")
            outcomes = set(finished.values())
        finally:
            arriving.close()
        while not set(seen) - first and len(seen) < 80:
            ask()
        assert set(seen) - first and len(seen) > 5, seen
        wait_workers(server, cfg.kind, 2)  # and it is back to two workers
        assert len(outcomes) == 1, f"recycled workers disagree on a half-sent request: {outcomes}"
        drops = outcomes == {"closed unanswered"}
        unanswered = ("RemoteProtocolError: Server disconnected", "ReadError: [Errno 104]")
        assert failures == [f for f in failures if drops and f.startswith(unanswered)], failures
        check_cell(row, "recycle", "drops" if drops else "yes")


def pid_or_failure(server: harness.Server) -> int | str:
    """The answering worker's PID, or what went wrong (a new worker may take a while to boot)."""
    try:
        return pid_of(server.get("/", timeout=60))
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"


#: The command each server's timeout probe runs; Hypercorn and Granian have no such option.
TIMEOUT_SECTION = {
    "uvicorn": "timeout", "gunicorn-uvicorn-worker": "timeout", "gunicorn-asgi": "timeout",
    "hypercorn": "serve", "granian": "serve", "daphne": "timeout", "fastapi-run": "serve",
}
PROBE_SECONDS = 6  # twice Gunicorn's --timeout 3, three times Daphne's --http-timeout 2


def timeout_probes(row: str, app_dir: Path, log_dir: Path) -> str:
    """A slow request that awaits, then a request that blocks its worker's event loop, each
    lasting well past the server's timeout setting; for Uvicorn also a frozen worker."""
    cfg = ROWS[row]
    workers = 0 if cfg.kind == "daphne" else 2
    with serving(cfg.ref(TIMEOUT_SECTION[row]), log_dir=log_dir, cwd=app_dir) as server:
        if workers:
            wait_workers(server, cfg.kind, workers)
        slow = server.get(f"/slow?seconds={PROBE_SECONDS}", timeout=PROBE_SECONDS + 30)
        if slow.status_code != 200:
            assert slow.status_code == 503, slow  # /slow itself only ever answers 200
            return "request"

        before = {p.pid for p in server.workers()}
        start = time.monotonic()
        try:
            blocked = server.get(f"/block?seconds={PROBE_SECONDS}",
                                timeout=PROBE_SECONDS + 30)
        except httpx.HTTPError:  # the connection died with its worker
            killed = int(server.wait_for_log(r"WORKER TIMEOUT \(pid:(\d+)\)")[1])
            assert killed in before
            wait_workers(server, cfg.kind, workers, gone={killed})
            return "heartbeat"
        assert blocked.status_code == 200 and time.monotonic() - start >= PROBE_SECONDS - 0.5

        if cfg.kind == "uvicorn":
            # The health check is answered by a thread, so a blocked event loop passes it; a
            # frozen process does not: SIGSTOP one worker and the parent replaces it.
            victim = min(wait_workers(server, cfg.kind, 2))
            os.kill(victim, signal.SIGSTOP)
            wait_workers(server, cfg.kind, 2, timeout=40, gone={victim})
            assert re.search(rf"Child process \[{victim}\] died", server.log())
            return "health check"
        return "none"


def test_stuck_worker_and_slow_request(tmp_path: Path) -> None:
    """The timeout probes, on all servers at once (they mostly wait)."""
    folders = {}
    for row in ROWS:
        folders[row] = tmp_path / row
        (folders[row] / "app").mkdir(parents=True)
        shutil.copy(APP.path, folders[row] / "app" / "main.py")
    with ThreadPoolExecutor(len(ROWS)) as pool:
        futures = {row: pool.submit(timeout_probes, row, folders[row] / "app", folders[row])
                   for row in ROWS}
        observed = {row: future.result() for row, future in futures.items()}
    for row, value in observed.items():
        check_cell(row, "timeout", value)


def test_fastapi_run_trusts_proxy_headers_from_loopback_only(app_dir: Path, log_dir: Path) -> None:
    """`fastapi run` turns --proxy-headers on and, like Uvicorn, trusts them only from
    127.0.0.1 (--forwarded-allow-ips): a proxy on the same host sets the client and scheme."""
    with serving("servers/fastapi_run.sh:serve", log_dir=log_dir, cwd=app_dir) as server:
        wait_workers(server, "uvicorn", 2)
        seen = server.get("/client", headers={"X-Forwarded-For": "203.0.113.7",
                                              "X-Forwarded-Proto": "https"}).json()
    assert seen == {"client": "203.0.113.7", "scheme": "https"}, seen
    help_text = fastapi_run_help(app_dir, log_dir)
    assert re.search(r"│ --proxy-headers .*\[default: proxy-headers\]", help_text), help_text


def test_fastapi_run_abandons_a_reload_when_startup_takes_over_5_s(app_dir: Path,
                                                                   log_dir: Path) -> None:
    """`fastapi run` keeps Uvicorn's 5 s --timeout-worker-healthcheck and cannot raise it: with
    an app whose startup takes 8 s, every SIGHUP kills the new worker and keeps the old code."""
    with serving("servers/fastapi_run.sh:slow-start", log_dir=log_dir, cwd=app_dir) as server:
        reload_is_abandoned(server, timeout=90, abort_timeout=60)
    check_cell("fastapi-run", "reload", "within 5 s")


def fastapi_run_help(app_dir: Path, log_dir: Path) -> str:
    """The page's help command, on a terminal wide enough that no option name is wrapped."""
    return harness.run("servers/fastapi_run.sh:help", cwd=app_dir, log_dir=log_dir,
                       env={"COLUMNS": "250"}).output


#: Uvicorn options a reader may want that `fastapi run` does not pass on.
NOT_EXPOSED = ["--ssl-keyfile", "--limit-max-requests", "--timeout-worker-healthcheck",
               "--timeout-keep-alive", "--timeout-graceful-shutdown", "--http", "--loop",
               "--log-level", "--limit-concurrency", "--backlog"]


def test_fastapi_run_exposes_few_uvicorn_options(app_dir: Path, log_dir: Path) -> None:
    """`fastapi run --help` lists host, port, workers, root path and proxy headers, and none of
    the Uvicorn options for TLS, request limits, timeouts, protocol or event loop."""
    help_text = fastapi_run_help(app_dir, log_dir)
    for option in ("--host", "--port", "--workers", "--root-path", "--proxy-headers",
                   "--forwarded-allow-ips"):
        assert option in help_text, f"fastapi run has no {option} option"
    shown = [o for o in NOT_EXPOSED if re.search(rf"{re.escape(o)}\b(?!-)", help_text)]
    assert shown == [], f"fastapi run now exposes {shown}: update the page"


# --------------------------------------------------------------------------- worker classes


def test_gunicorn_worker_classes() -> None:
    """The worker classes built into the pinned Gunicorn: eventlet is not among them."""
    from gunicorn.workers import SUPPORTED_WORKERS

    assert set(SUPPORTED_WORKERS) == {
        "sync", "gthread", "gevent", "gevent_wsgi", "gevent_pywsgi", "tornado", "asgi"
    }


def test_eventlet_worker_was_removed(app_dir: Path, log_dir: Path) -> None:
    """The page's eventlet command fails at once: Gunicorn no longer knows the class."""
    result = harness.run("servers/eventlet.sh", cwd=app_dir, check=False, log_dir=log_dir,
                         ports=harness.port_map())
    assert result.returncode == 1, result.output
    assert "class uri 'eventlet' invalid or not found" in result.output
    errors = re.findall(r"^\s*(\w+Error: .*)$", result.output, re.M)
    last = errors[-1] if errors else result.output.strip().splitlines()[-1]
    assert "Entry point ('gunicorn.workers', 'eventlet') not found" in result.output, (
        f"this Gunicorn still has an eventlet worker class; it failed with: {last}")


WSGI_WORKERS = {
    "sync": "servers/wsgi_workers.sh:sync",
    "gthread": "servers/wsgi_workers.sh:gthread",
    "gevent": "servers/wsgi_workers.sh:gevent",
    "gevent_wsgi": "servers/wsgi_workers.sh:gevent_wsgi",
    "gevent_pywsgi": "servers/wsgi_workers.sh:gevent_pywsgi",
    "tornado": "servers/wsgi_workers.sh:tornado",
}


@pytest.mark.parametrize("worker_class", WSGI_WORKERS)
def test_every_other_builtin_worker_class_serves_a_wsgi_app(worker_class: str, tmp_path: Path,
                                                           log_dir: Path) -> None:
    """The same commands, in a folder whose main:app is a WSGI app (wsgi_cpu.py): they serve.
    With asgi, these are all of Gunicorn's built-in classes."""
    from gunicorn.workers import SUPPORTED_WORKERS

    assert set(SUPPORTED_WORKERS) == {*WSGI_WORKERS, "asgi"}
    folder = tmp_path / "wsgi"
    folder.mkdir()
    shutil.copy(harness.snippet("servers/wsgi_cpu.py").path, folder / "main.py")
    with harness.serving(WSGI_WORKERS[worker_class], log_dir=log_dir, cwd=folder) as server:
        server.wait_for_workers(1)
        answer = server.get("/", timeout=60)
        assert answer.status_code == 200 and answer.json()["total"] > 0
        assert f"Using worker: {worker_class}" in server.log()


@pytest.mark.parametrize("worker_class", WSGI_WORKERS)
def test_wsgi_worker_cannot_serve_fastapi(worker_class: str, app_dir: Path,
                                          log_dir: Path) -> None:
    """A WSGI worker calls app(environ, start_response); FastAPI wants (scope, receive, send)."""
    with (
        harness.serving(WSGI_WORKERS[worker_class], log_dir=log_dir, cwd=app_dir,
                        ready_path=None) as server,
        ThreadPoolExecutor(1) as pool,
    ):
        server.wait_for_log(r"Booting worker with pid")
        server.wait_for_workers(1)
        answer = pool.submit(server.get, "/", timeout=60)
        server.wait_for_log(r"TypeError: FastAPI\.__call__\(\) missing 1 required positional "
                            r"argument: 'send'", timeout=60)
        if worker_class != "tornado":
            assert answer.result(timeout=30).status_code == 500
            return
        # Tornado's WSGI container logs the error and leaves the client waiting.
        harness.observe_for(2, "an answer that would follow the error")
        assert not answer.done(), "no answer two seconds after the error"
        server.stop()
        with pytest.raises(httpx.HTTPError):
            answer.result(timeout=30)  # the connection closes, still without a response


DEPRECATION_COMMANDS = {
    "old": "servers/deprecated_worker.sh:old",
    "show-warnings": "servers/deprecated_worker.sh:show-warnings",
    "new": "servers/deprecated_worker.sh:new",
}


@pytest.mark.parametrize("section", DEPRECATION_COMMANDS)
def test_deprecated_uvicorn_worker(section: str, app_dir: Path, log_dir: Path) -> None:
    """uvicorn.workers.UvicornWorker still serves, and warns only when warnings are shown;
    uvicorn_worker.UvicornWorker does not warn even then."""
    env = {"PYTHONWARNINGS": "default"} if section == "new" else None
    with harness.serving(DEPRECATION_COMMANDS[section], log_dir=log_dir,
                         cwd=app_dir, env=env) as server:
        server.wait_for_workers(1)
        assert pid_of(server.get("/")) in {p.pid for p in server.workers()}
        log = server.log()
    warned = re.search(r"DeprecationWarning: The `uvicorn\.workers` module is deprecated\. "
                       r"Please use `uvicorn-worker` package instead\.", log)
    assert bool(warned) == (section == "show-warnings"), log


def test_gthread_threads_share_one_core(app_dir: Path, log_dir: Path) -> None:
    """Four threads run four CPU-bound requests at once, yet the worker never uses more than
    one core: the GIL lets one thread run Python at a time."""
    shutil.copy(harness.snippet("servers/wsgi_cpu.py").path, app_dir / "wsgi_cpu.py")
    with harness.serving("servers/gthread_cpu.sh", log_dir=log_dir, cwd=app_dir,
                         ready_path=None) as server:
        server.wait_for_log(r"Booting worker with pid")
        (worker,) = server.wait_for_workers(1)
        cpu = lambda: sum(worker.cpu_times()[:2])  # noqa: E731
        cpu_before, start = cpu(), time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            answers = [r.json() for r in pool.map(lambda _: server.get("/"), range(4))]
        wall, used = time.monotonic() - start, cpu() - cpu_before
    assert {a["pid"] for a in answers} == {worker.pid}
    assert len({a["thread"] for a in answers}) >= 2, "several threads served them"
    assert used / wall <= 1.1, f"{used:.2f} s of CPU in {wall:.2f} s: more than one core"


# --------------------------------------------------------------------------- HTTP/2


def h2_prior_knowledge(server: harness.Server) -> str:
    """The HTTP version of an answer to a client that starts HTTP/2 in cleartext."""
    with harness.http_client(http1=False, http2=True, timeout=20) as c:
        return c.get(server.url("/")).http_version


def test_uvicorn_http2_with_zttp(tls_dir: Path, log_dir: Path) -> None:
    """With the zttp package and --http zttp --http2, Uvicorn 0.54 answers HTTP/2: over TLS
    (ALPN picks h2) and in cleartext to a client that starts with the HTTP/2 preface."""
    verify = ssl.create_default_context(cafile=str(tls_dir / "client.pem"))
    # One Uvicorn process re-raises the SIGTERM it handled, so it exits with -15 once stopped.
    with harness.serving("servers/uvicorn_http2.sh:tls", log_dir=log_dir, cwd=tls_dir,
                         scheme="https", verify=verify, expect_clean=False) as server:
        with server.client(http2=True) as client:
            assert client.get("/").http_version == "HTTP/2"
        out = harness.run("servers/check_http_version.sh", server=server, cwd=tls_dir).output
        assert out.strip() == "2", out
    with harness.serving("servers/uvicorn_http2.sh:h2c", log_dir=log_dir, cwd=tls_dir,
                         expect_clean=False) as server:
        assert h2_prior_knowledge(server) == "HTTP/2"
        assert server.get("/").http_version == "HTTP/1.1", "HTTP/1.1 clients still served"


def test_uvicorn_http2_switch_alone_refuses_to_start(app_dir: Path, log_dir: Path) -> None:
    """--http2 without --http zttp stops Uvicorn at start-up, naming what is missing."""
    server = harness.start("servers/uvicorn_http2.sh:no-switch", log_dir=log_dir, cwd=app_dir)
    try:
        harness.wait_until(lambda: server.proc.poll() is not None, what="uvicorn exits",
                           timeout=60)
    finally:
        server.stop(expect_clean=False)
    assert server.proc.returncode != 0
    assert "HTTP/2 requires the `zttp` HTTP protocol" in server.log(), server.log()


def test_gunicorn_http2_is_beta_and_needs_the_h2_extra(tmp_path: Path, tls_dir: Path,
                                                       log_dir: Path) -> None:
    """The page's requirements name gunicorn[http2]; the pinned Gunicorn calls HTTP/2 beta;
    without the extra, both Gunicorn HTTPS commands refuse to start, even with the Uvicorn
    worker, which would not speak HTTP/2 anyway (tests: the comparison's TLS test).

    This is also the reader-environment check failing as it should: an environment built from
    the quick start's requirements (no h2) runs the servers page's command, and the error
    names the page, the requirements file and the missing package."""
    pins = harness.snippet(REQUIREMENTS).text.split()
    assert "gunicorn[http2]==27.0.1" in pins
    description = harness.reader_env("servers").metadata("gunicorn")["Description"]
    assert "**HTTP/2 support** (beta)" in description, (
        "this Gunicorn's description has no '**HTTP/2 support** (beta)'")

    without_h2 = tmp_path / "requirements.txt"
    without_h2.write_text(harness.snippet("quickstart/requirements.txt").text)
    for ref in ("servers/gunicorn_asgi.sh:tls", "servers/gunicorn_uvicorn_worker.sh:tls"):
        try:
            with harness.serving(ref, log_dir=log_dir, cwd=tls_dir, scheme="https",
                                 requirements=[without_h2]):
                pass
        except harness.HarnessError as failure:
            message = str(failure)
        except AssertionError as failure:  # it started, and the wait for an answer ran out
            pytest.fail(f"without the h2 package, {ref} started instead of refusing: "
                        f"{str(failure).splitlines()[0]}")
        else:
            pytest.fail(f"without the h2 package, {ref} started and served instead of refusing")
        assert "docs/servers.md" in message and str(without_h2) in message, message
        assert "the h2 package is not installed" in message, (
            f"without the h2 package, {ref} did not refuse to start: {message.splitlines()[0]}")
        assert "a package docs/servers.md does not tell the reader to install" in message


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements pin every package with ==, and the environment the tests build
    from that file alone holds exactly those versions."""
    harness.check_reader_env("servers", shows=[REQUIREMENTS])


def test_http3_is_not_available_here(log_dir: Path) -> None:
    """Granian 2.8.7 offers no HTTP/3 (its --http takes auto, 1 or 2), and this machine has no
    HTTP/3 client: curl lacks the HTTP3 feature and httpx speaks only HTTP/1.1 and HTTP/2."""
    granian = harness.reader_env("servers").bin / "granian"
    out = subprocess.run([granian, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"--http \[auto\|1\|2\]", out), out
    assert not re.search(r"http3|quic", out, re.I)
    features = subprocess.run(["curl", "--version"], capture_output=True, text=True,
                              timeout=30).stdout
    assert "HTTP3" not in features, features


# --------------------------------------------------------------------------- the data file


def test_every_cell_names_the_test_that_checks_it() -> None:
    """Every row of matrix.yml is a server this file runs, and each of its cells names the
    test that observes its column for its row: nothing in the table is untested."""
    rows = MATRIX["rows"]
    assert set(MATRIX["columns"]) == set(COLUMN_TESTS)
    assert set(rows) == set(ROWS)
    langs = ("en", "vi", "zh")
    for row, data in rows.items():
        assert all(data["name"][lang] for lang in langs), row
        assert set(data) == {"name", "cells"}, f"matrix.yml: rows.{row} must be tested cells"
        assert set(data["cells"]) == set(COLUMN_TESTS), row
        for column, cell in data["cells"].items():
            where = f"matrix.yml: rows.{row}.cells.{column}"
            assert cell["test"] == CELL_TESTS.get((row, column), COLUMN_TESTS[column]), where
            assert cell["value"] in MATRIX["labels"], where
            assert set(cell.get("note", {"en": 1, "vi": 1, "zh": 1})) == set(langs), where


def test_table_is_rendered_from_the_matrix(tmp_path: Path, log_dir: Path) -> None:
    """The page's render command, run on a copy, reproduces the committed tables exactly."""
    for name in ("servers/matrix.yml", "servers/render_matrix.py"):
        shutil.copy(harness.snippet(name).path, tmp_path)
    harness.run("servers/render.sh", cwd=tmp_path, log_dir=log_dir)
    for name in ("servers/matrix.md", "servers/matrix.vi.md", "servers/matrix.zh.md"):
        committed = harness.snippet(name).path.read_text("utf-8")
        rendered = (tmp_path / Path(name).name).read_text("utf-8")
        assert rendered == committed, f"snippets/{name} is stale: run snippets/servers/render.sh"
