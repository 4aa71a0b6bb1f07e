"""docs/restarts.md: signals, reloads, recycling and --preload, watched on real servers.

A deploy is simulated by editing ``VERSION`` in a copy of ``snippets/restarts/main.py``; the
server runs from that copy. Signals are sent by running the page's own ``signals.sh`` sections
with ``MASTER_PID`` set to the master's PID.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

import harness

APP = harness.snippet("restarts/main.py")
SERVE = "restarts/serve.sh"
SIGNALS = "restarts/signals.sh"
GUNICORNC = "restarts/gunicornc.sh"
MAX_REQUESTS = "restarts/max_requests.sh"
RELOAD = "restarts/reload.sh"
PRELOAD = "restarts/preload.sh"
harness.snippet("restarts/socket_at_import.py")  # served by preload.sh
harness.snippet("restarts/socket_in_lifespan.py")
SLOW_START = harness.snippet("restarts/slow_start.py")  # served by the slow-start commands
SLOW_START_SECONDS = int(re.search(r"STARTUP_SECONDS = (\d+)", SLOW_START.text)[1])
CONFIG = harness.snippet("restarts/workers.conf.py")  # read by serve.sh:config
GRACEFUL_TIMEOUT = 3  # --graceful-timeout in serve.sh


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A copy of snippets/restarts/ that a test may edit, as a deploy edits the code."""
    folder = tmp_path / "app"
    shutil.copytree(APP.folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def deploy(app_dir: Path, version: str) -> None:
    main = app_dir / "main.py"
    text, n = re.subn(r'^VERSION = "\d+"$', f'VERSION = "{version}"', main.read_text(), flags=re.M)
    assert n == 1
    main.write_text(text)


def send(section: str, pid: int, log_dir: Path) -> None:
    """Run the page's signal command for ``section`` against the process ``pid``."""
    harness.run(f"{SIGNALS}:{section}", env={"MASTER_PID": str(pid)}, log_dir=log_dir)


def json_on_new_connection(server: harness.Server, path: str = "/", timeout: float = 30) -> dict:
    """The JSON answer to one request on a new connection (so requests spread over the
    workers); an HTTP error status raises."""
    with server.client(timeout=timeout, headers={"Connection": "close"}) as client:
        r = client.get(path)
    r.raise_for_status()
    return r.json()


def wait_for_new_workers(
    server: harness.Server, old: set[int], count: int, timeout: float = 60
) -> set[int]:
    """Wait until ``count`` ready workers run and none of them is in ``old``."""
    seen: set[int] = set()

    def replaced() -> set[int] | None:
        seen.clear()
        seen.update(w.pid for w in server.workers())
        ok = len(seen) == count and not seen & old and seen <= server.ready_worker_pids()
        return set(seen) if ok else None

    return harness.wait_until(replaced, what=f"{count} new workers replace {sorted(old)}",
                              timeout=timeout, interval=0.1,
                              describe=lambda: f"workers now {sorted(seen)}")




in_background = harness.in_background


CUT = {"RemoteProtocolError", "ReadError"}  # the connection closed without a response


def start_requests(server: harness.Server, *paths: str) -> list[tuple[threading.Thread, dict]]:
    """Send requests in the background; return once the app has logged each one's arrival."""
    mark = len(server.log())
    started = [in_background(harness.timed_outcome, server, path) for path in paths]
    harness.wait_until(lambda: server.log()[mark:].count("in flight: ") >= len(paths),
                       what=f"{paths} reach the app", server=server)
    return started


# --------------------------------------------------------------------------- HUP


@pytest.mark.parametrize("section", ["uvicorn-worker", "asgi", "uvicorn"])
def test_hup_replaces_workers_and_loads_new_code(
    section: str, app_dir: Path, log_dir: Path
) -> None:
    """HUP: new worker processes that import the code as it is now on disk."""
    with harness.serving(f"{SERVE}:{section}", log_dir=log_dir, cwd=app_dir) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        assert json_on_new_connection(server)["version"] == "1"
        deploy(app_dir, "2")
        [(in_flight, box)] = start_requests(server, "/await/1.5")
        send("hup", server.main_process().pid, log_dir)
        new = wait_for_new_workers(server, old, 2)
        in_flight.join(30)
        outcome, _ = box["result"]
        assert outcome[0] == 200 and outcome[1]["version"] == "1", outcome
        assert outcome[1]["pid"] in old
        answers = [json_on_new_connection(server) for _ in range(6)]
        assert {a["version"] for a in answers} == {"2"}
        assert {a["pid"] for a in answers} <= new


@pytest.mark.parametrize("section", ["uvicorn-worker", "asgi"])
def test_hup_graceful_timeout_bounds_only_the_asgi_worker(
    section: str, log_dir: Path
) -> None:
    """After HUP, --graceful-timeout 3 and a 10 s request in flight on an old worker: the
    asgi worker closes the connection when the 3 s run out; the uvicorn worker is never told
    the limit (the master only waits), so the old worker lives on and answers after 10 s."""
    with harness.serving(f"{SERVE}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        long = 10  # seconds; more than three times the graceful timeout
        [(request, box)] = start_requests(server, f"/await/{long}")
        send("hup", server.main_process().pid, log_dir)
        request.join(60)
        outcome, elapsed = box["result"]
        if section == "asgi":
            assert str(outcome) in CUT, outcome
            assert elapsed >= GRACEFUL_TIMEOUT * 0.9, elapsed  # cut when the 3 s ran out
            assert "Forcing close of 1 connections" in server.log()
        else:
            assert outcome[0] == 200 and outcome[1]["pid"] in old, outcome
            assert elapsed >= long * 0.9, "the old worker outlived the graceful timeout"
        wait_for_new_workers(server, old, 2)


def test_hup_old_uvicorn_worker_is_killed_by_the_heartbeat_timeout(log_dir: Path) -> None:
    """An old uvicorn worker stops sending its heartbeat once it is shutting down, so the
    master kills it --timeout seconds later (WORKER TIMEOUT), cutting the request it holds:
    with --timeout 4, a 16 s request in flight at HUP is cut long before it ends."""
    with harness.serving(
        f"{SERVE}:uvicorn-worker-timeout", log_dir=log_dir, cwd=APP.folder
    ) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        long = 16
        mark = len(server.log())
        [(request, box)] = start_requests(server, f"/await/{long}")
        holder = int(re.search(r"in flight: \S+ on (\d+)", server.log()[mark:])[1])
        send("hup", server.main_process().pid, log_dir)
        request.join(60)
        outcome, _ = box["result"]
        assert str(outcome) in CUT, outcome  # not the 200 it would have got at its end
        server.wait_for_log(rf"WORKER TIMEOUT \(pid:{holder}\)", start=mark)
        wait_for_new_workers(server, old, 2)


def test_uvicorn_hup_starts_each_new_worker_before_stopping_an_old_one(log_dir: Path) -> None:
    """uvicorn --workers replaces its workers one at a time: in the log, the n-th old worker
    begins to shut down only after n new workers have completed their startup."""
    with harness.serving(f"{SERVE}:uvicorn", log_dir=log_dir, cwd=APP.folder) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        harness.wait_until(  # "ready" above is "Started server process"; startup ends later
            lambda: server.log().count("Application startup complete") == 2,
            what="both first workers have completed their startup", server=server,
        )
        mark = len(server.log())
        send("hup", server.main_process().pid, log_dir)
        wait_for_new_workers(server, old, 2)
        harness.wait_until(
            lambda: server.log()[mark:].count("Finished server process") == 2,
            what="both old workers have exited", server=server,
        )
        events = re.findall(r"Application startup complete|Shutting down", server.log()[mark:])
        assert len(events) == 4, events
        for n in (1, 2):
            nth_stop = [i for i, e in enumerate(events) if e == "Shutting down"][n - 1]
            ready = events[:nth_stop].count("Application startup complete")
            assert ready >= n, f"old worker {n} stopped with {ready} new worker(s) ready: {events}"


def test_hup_rereads_the_config_file(app_dir: Path, log_dir: Path) -> None:
    """HUP makes the Gunicorn master read its configuration file again: workers = 3 there
    gives three new workers."""
    with harness.serving(f"{SERVE}:config", log_dir=log_dir, cwd=app_dir) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        conf = app_dir / CONFIG.path.name
        conf.write_text(conf.read_text().replace("workers = 2", "workers = 3"))
        send("hup", server.main_process().pid, log_dir)
        wait_for_new_workers(server, old, 3)


def test_gunicorn_hup_does_not_wait_for_new_workers_to_start(log_dir: Path) -> None:
    """Gunicorn stops the old workers as soon as the new ones are forked, before their 6 s
    startup is over: a request sent then waits for a new worker to finish starting."""
    with harness.serving(
        f"{SERVE}:slow-start", log_dir=log_dir, cwd=APP.folder, ready_timeout=90
    ) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        _, before = harness.timed_outcome(server, "/")
        send("hup", server.main_process().pid, log_dir)
        harness.wait_until(lambda: not {w.pid for w in server.workers()} & old,
                           what="the old workers are gone", server=server)  # ...
        assert len(server.ready_worker_pids() - old) == 0, "...and no new one is ready yet"
        outcome, during = harness.timed_outcome(server, "/")
        assert outcome[0] == 200 and outcome[1]["pid"] not in old, outcome
        assert during > 5 * before and during >= SLOW_START_SECONDS / 3, (before, during)
        server.wait_for_workers(2)


def test_uvicorn_hup_gives_up_on_a_slow_starting_app(log_dir: Path) -> None:
    """uvicorn --workers waits --timeout-worker-healthcheck (5 s by default) for each new
    worker to finish its startup; one that takes 6 s is killed and the reload abandoned."""
    ref = f"{SERVE}:uvicorn-slow-start"
    with harness.serving(ref, log_dir=log_dir, cwd=APP.folder, ready_timeout=90) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        send("hup", server.main_process().pid, log_dir)
        server.wait_for_log(r"was not ready in time; keeping worker \[\d+\] and aborting", 60)
        assert {w.pid for w in server.wait_for_workers(2)} == old
        assert json_on_new_connection(server)["pid"] in old


@pytest.mark.parametrize("worker_class", ["uvicorn-worker", "asgi"])
def test_gunicorn_timeout_does_not_bound_a_slow_startup(worker_class: str, log_dir: Path) -> None:
    """--timeout 2 and a 6 s lifespan startup: the worker is not killed while it starts; the
    same worker finishes its startup and serves, and no WORKER TIMEOUT is logged."""
    ref = f"{SERVE}:slow-start-timeout-{worker_class}"
    with harness.serving(ref, log_dir=log_dir, cwd=APP.folder, ready_timeout=90) as server:
        [worker] = server.wait_for_workers(1, timeout=60)
        assert json_on_new_connection(server)["pid"] == worker.pid
        assert server.log().count("Booting worker with pid") == 1
        assert "WORKER TIMEOUT" not in server.log()


def test_hup_with_preload_keeps_serving_the_old_code(app_dir: Path, log_dir: Path) -> None:
    """With --preload the master imported the app once; HUP forks new workers from it, so
    they are new processes running the old code."""
    with harness.serving(f"{SERVE}:preload", log_dir=log_dir, cwd=app_dir) as server:
        old = {w.pid for w in server.wait_for_workers(2)}
        deploy(app_dir, "2")
        send("hup", server.main_process().pid, log_dir)
        new = wait_for_new_workers(server, old, 2)
        answers = [json_on_new_connection(server) for _ in range(6)]
        assert {a["version"] for a in answers} == {"1"}, "still the code imported at start"
        assert {a["pid"] for a in answers} <= new


def test_gunicornc_shows_adds_removes_and_reloads_workers(log_dir: Path) -> None:
    """The control socket does what TTIN, TTOU and HUP do, and reports the workers as JSON."""
    with harness.serving(f"{SERVE}:uvicorn-worker", log_dir=log_dir, cwd=APP.folder) as server:
        first = {w.pid for w in server.wait_for_workers(2)}

        def shown() -> set[int]:
            out = harness.run(f"{GUNICORNC}:show-workers", server=server, log_dir=log_dir).output
            return {w["pid"] for w in json.loads(out)["workers"]}

        assert shown() == first
        harness.run(f"{GUNICORNC}:worker-add", server=server, log_dir=log_dir)
        three = {w.pid for w in server.wait_for_workers(3)}
        assert first < three and shown() == three
        harness.run(f"{GUNICORNC}:worker-remove", server=server, log_dir=log_dir)
        two = {w.pid for w in server.wait_for_workers(2)}
        assert two < three
        harness.run(f"{GUNICORNC}:reload", server=server, log_dir=log_dir)
        new = wait_for_new_workers(server, two, 2)
        harness.wait_until(lambda: shown() == new, interval=0.2, timeout=20,
                           what=f"the master shows the new workers {sorted(new)}",
                           describe=lambda: repr(shown()))  # it forgets an old one when reaped


# --------------------------------------------------------------------------- TTIN / TTOU


@pytest.mark.parametrize("section", ["uvicorn-worker", "uvicorn"])
def test_ttin_adds_and_ttou_removes_a_worker(section: str, log_dir: Path) -> None:
    """TTIN: one more worker. TTOU: one fewer; Gunicorn stops its oldest worker, Uvicorn the
    newest."""
    with harness.serving(f"{SERVE}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        two = {w.pid for w in server.wait_for_workers(2)}
        master = server.main_process().pid
        send("ttin", master, log_dir)
        three = {w.pid for w in server.wait_for_workers(3)}
        assert two < three, "one worker added, the others untouched"
        [added] = three - two
        send("ttou", master, log_dir)
        back = {w.pid for w in server.wait_for_workers(2)}
        assert back < three
        [removed] = three - back
        if section == "uvicorn":
            assert removed == added, "Uvicorn stops the newest worker"
        else:
            assert removed in two, "Gunicorn stops the oldest worker"


# --------------------------------------------------------------------------- TERM, INT, QUIT


@pytest.mark.parametrize("section", ["uvicorn-worker", "asgi"])
def test_term_finishes_short_requests_and_cuts_long_ones(section: str, log_dir: Path) -> None:
    """TERM with --graceful-timeout 3: a 1 s request in flight finishes; an 8 s one is cut
    when the graceful timeout runs out; the master then exits 0."""
    with harness.serving(f"{SERVE}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        (short, s_box), (long, l_box) = start_requests(server, "/await/1", "/await/8")
        signalled = time.monotonic()
        send("term", server.main_process().pid, log_dir)
        server.proc.wait(30)
        exited_after = time.monotonic() - signalled
        short.join(30)
        long.join(30)
        assert s_box["result"][0][0] == 200
        outcome, _ = l_box["result"]
        assert outcome in CUT, outcome  # not the 200 it would have got at its end
        assert exited_after >= GRACEFUL_TIMEOUT * 0.9, "the master waited for the graceful timeout"
        assert server.stop() == 0  # exit code 0, nothing left behind


#: What new connections get after TERM, while a long request keeps the server up (after the
#: moment it takes each server to act on TERM, when they may still be answered).
AFTER_TERM = {
    "uvicorn-worker": "refused",  # every worker has closed its listening socket
    "asgi": "refused",
    "uvicorn": "left waiting",  # the parent keeps the socket open, and nobody accepts
}


def new_connection_outcome(server: harness.Server) -> str:
    try:
        json_on_new_connection(server, "/", timeout=3)
        return "answered"
    except httpx.ConnectError:
        return "refused"
    except httpx.TimeoutException:
        return "left waiting"
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return "closed unanswered"  # accepted in the instant before the socket closed
    except httpx.HTTPError as exc:
        return type(exc).__name__


def new_connections_around_term(
    server: harness.Server, in_flight: threading.Thread, settled: str
) -> list[tuple[float, str]]:
    """Two clients open new connections one after another, before and after TERM; return
    (seconds after TERM each was opened, what it got) for the connections opened while the
    request ``in_flight`` still kept the server up, once two of those got ``settled``."""
    attempts: list[tuple[float, str]] = []
    before: list[str] = []
    stop = threading.Event()
    termed: list[float] = []

    def client() -> None:
        while not stop.is_set():
            opened, kept_up = time.monotonic(), in_flight.is_alive()
            outcome = new_connection_outcome(server)
            if termed and opened > termed[0]:
                if kept_up:  # a loaded machine may take seconds to get here: count only these
                    attempts.append((opened - termed[0], outcome))
            else:
                before.append(outcome)

    clients = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for c in clients:
        c.start()
    harness.wait_until(lambda: len(before) >= 4, what="the clients are running", server=server)
    termed.append(time.monotonic())
    server.send_signal(signal.SIGTERM)  # directly: the moment counts
    try:
        harness.wait_until(
            lambda: sum(o == settled for _, o in attempts) >= 2 or not in_flight.is_alive(),
            what=f"new connections opened after TERM are {settled}", timeout=60,
            describe=lambda: str(attempts[-5:]),
        )
        seen = list(attempts)
        assert sum(o == settled for _, o in seen) >= 2, (
            f"two new connections opened while the long request kept the server up: {seen}")
    finally:
        stop.set()
        for c in clients:
            c.join(10)
    return seen


@pytest.mark.parametrize("section", AFTER_TERM)
def test_new_connections_after_term(section: str, log_dir: Path) -> None:
    """After TERM, with a 15 s request keeping the server up, new connections are refused
    by both Gunicorn worker classes, and left waiting, unanswered, by uvicorn --workers."""
    with harness.serving(f"{SERVE}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        [(request, _)] = start_requests(server, "/await/15")
        attempts = new_connections_around_term(server, request, AFTER_TERM[section])
        failed = [o for _, o in attempts if o != "answered"]
        # In the instant a worker shuts its listening socket, a connection the system had
        # just accepted for it may be closed unanswered (seen once, 0.04 s after TERM); the
        # wait above saw two connections get the settled outcome.
        assert set(failed) <= {AFTER_TERM[section], "closed unanswered"}, attempts
        request.join(40)
        server.proc.wait(40)
        server.stop(expect_clean=False)


def test_term_kills_a_busy_uvicorn_worker_without_lifespan_shutdown(log_dir: Path) -> None:
    """When --graceful-timeout runs out on TERM, the uvicorn worker still busy with a 9 s
    request is killed: its lifespan shutdown never runs and no log line says so, while the
    idle worker ran its lifespan shutdown and exited."""
    with harness.serving(f"{SERVE}:uvicorn-worker", log_dir=log_dir, cwd=APP.folder) as server:
        workers = {w.pid for w in server.wait_for_workers(2)}
        mark = len(server.log())
        [(request, box)] = start_requests(server, "/await/9")
        busy = int(re.search(r"in flight: \S+ on (\d+)", server.log()[mark:])[1])
        [idle] = workers - {busy}
        send("term", server.main_process().pid, log_dir)
        server.proc.wait(40)
        request.join(30)
        assert str(box["result"][0]) in CUT, box["result"]
        log = server.log()[mark:]
        assert f"lifespan shutdown on {idle}" in log
        assert f"lifespan shutdown on {busy}" not in log
        assert f"Finished server process [{busy}]" not in log
        assert "timeout" not in log.lower(), "nothing says the graceful timeout ran out"
        assert server.stop() == 0

def test_uvicorn_term_waits_for_every_request(log_dir: Path) -> None:
    """uvicorn --workers without --timeout-graceful-shutdown: TERM waits as long as the
    longest request in flight takes."""
    with harness.serving(f"{SERVE}:uvicorn", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        [(request, box)] = start_requests(server, "/await/5")
        send("term", server.main_process().pid, log_dir)
        request.join(30)
        outcome, elapsed = box["result"]
        assert outcome[0] == 200, outcome
        assert elapsed >= 5 * 0.95
        server.proc.wait(30)  # the parent exits once its workers have; a second TERM would kill it
        assert server.stop() == 0


def test_uvicorn_supervisor_ignores_quit_usr2_winch_and_stops_on_int(log_dir: Path) -> None:
    """uvicorn --workers has no handler for QUIT, USR2 or WINCH: nothing happens. INT is a
    graceful stop, like TERM."""
    with harness.serving(f"{SERVE}:uvicorn", log_dir=log_dir, cwd=APP.folder) as server:
        before = {w.pid for w in server.wait_for_workers(2)}
        parent = server.main_process().pid
        for sig in ("quit", "usr2", "winch"):
            send(sig, parent, log_dir)
        harness.observe_for(1.5, "the parent looks at its signals every half second")
        assert {w.pid for w in server.workers()} == before
        assert json_on_new_connection(server)["pid"] in before
        [(request, box)] = start_requests(server, "/await/1")
        send("int", parent, log_dir)
        server.proc.wait(30)
        request.join(30)
        assert box["result"][0][0] == 200, "the request in flight finished"
        assert "Received SIGINT, exiting." in server.log()
        assert server.stop() == 0


@pytest.mark.parametrize("sig", ["int", "quit"])
def test_asgi_worker_quick_shutdown_cuts_requests(sig: str, log_dir: Path) -> None:
    """INT or QUIT to the master: the asgi workers drop in-flight requests and exit at once."""
    with harness.serving(f"{SERVE}:asgi", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        [(request, box)] = start_requests(server, "/await/5")
        mark = len(server.log())
        send(sig, server.main_process().pid, log_dir)
        request.join(30)
        outcome, _ = box["result"]
        assert outcome in CUT, outcome  # not the 200 it would have got after its 5 s
        server.proc.wait(30)
        assert server.log()[mark:].count("Worker shutting down") == 2
        assert server.stop() == 0


@pytest.mark.parametrize("sig", ["int", "quit"])
def test_uvicorn_worker_ignores_quick_shutdown(sig: str, log_dir: Path) -> None:
    """INT or QUIT to the master, which relays SIGQUIT to the workers: uvicorn-worker only
    marks itself not alive and keeps serving, so requests in flight finish and the master
    SIGKILLs the workers when --graceful-timeout runs out."""
    with harness.serving(f"{SERVE}:uvicorn-worker", log_dir=log_dir, cwd=APP.folder) as server:
        workers = {w.pid for w in server.wait_for_workers(2)}
        [(request, box)] = start_requests(server, "/await/1")
        signalled = time.monotonic()
        send(sig, server.main_process().pid, log_dir)
        server.proc.wait(30)
        exited_after = time.monotonic() - signalled
        request.join(30)
        assert box["result"][0][0] == 200
        assert exited_after >= GRACEFUL_TIMEOUT * 0.9
        for pid in workers:
            assert f"Worker (pid:{pid}) was sent SIGKILL!" in server.log()
        assert server.stop() == 0


def test_asgi_worker_ignores_term_while_booting(log_dir: Path) -> None:
    """TERM that reaches an asgi worker while it boots is lost: the worker goes on to serve
    and the master waits the whole --graceful-timeout. A booted server stops much sooner."""

    def stop_time(wait_until_booted: bool) -> tuple[float, str]:
        server = harness.start(f"{SERVE}:asgi", log_dir=log_dir, cwd=APP.folder)
        try:
            if wait_until_booted:
                server.wait_ready()
                server.wait_for_workers(2)
            else:
                server.wait_for_log(r"Booting worker with pid")
            signalled = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.proc.wait(30)
            took = time.monotonic() - signalled
            assert server.stop() == 0
            return took, server.log()
        finally:
            harness.kill_group(server.proc.pid)

    booting, booting_log = stop_time(wait_until_booted=False)
    booted, booted_log = stop_time(wait_until_booted=True)
    # A worker that handles TERM logs "Worker shutting down..."; the booting ones never do.
    assert booted_log.count("Worker shutting down") == 2
    assert "Worker shutting down" not in booting_log
    assert booting >= GRACEFUL_TIMEOUT * 0.9, "the master waited the whole graceful timeout"
    assert booted < booting, (booted, booting)


# --------------------------------------------------------------------------- USR2


def test_usr2_then_term_switches_masters_without_dropping_requests(
    app_dir: Path, log_dir: Path
) -> None:
    """USR2 starts a second master (a fresh exec, so new code) beside the old one; WINCH is
    ignored by a master that is not daemonized; TERM to the old master retires it. A client
    that keeps sending requests throughout gets an answer every time, but for one that arrives
    as an old worker stops: an old worker closes unanswered what it has not fully read, as the
    half-sent request each old worker holds through the switch shows for certain."""
    with harness.serving(f"{SERVE}:uvicorn-worker", log_dir=log_dir, cwd=app_dir) as server:
        old_master = server.main_process()
        old_workers = {w.pid for w in server.wait_for_workers(2)}
        arriving = harness.hold_one_connection_per_worker(server, old_workers)
        assert set(arriving.finish_extras()) <= {"answered"}
        deploy(app_dir, "2")

        answers: list[object] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                try:
                    answers.append(json_on_new_connection(server, timeout=10)["version"])
                except httpx.HTTPError as exc:
                    answers.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.02)

        client = threading.Thread(target=keep_asking, daemon=True)
        client.start()
        new_master = None
        try:
            start = len(server.log())
            send("usr2", old_master.pid, log_dir)
            new_pid = int(
                server.wait_for_log(r"\[(\d+)\] \[INFO\] Starting gunicorn", start=start)[1]
            )
            new_master = psutil.Process(new_pid)
            assert new_master.ppid() == old_master.pid
            harness.wait_until(
                lambda: len([c for c in new_master.children()
                             if c.pid in server.ready_worker_pids()]) == 2,
                what="the new master's two workers are ready", timeout=40, server=server)

            send("winch", old_master.pid, log_dir)
            harness.observe_for(1.5, "a master loop round or more")
            assert {c.pid for c in old_master.children()} >= old_workers, "WINCH did nothing"

            before_term = list(answers)
            send("term", old_master.pid, log_dir)
            server.proc.wait(30)
            harness.wait_until(lambda: "Master has been promoted" in server.log(),
                               what="the new master is promoted", timeout=20)
            harness.wait_until(lambda: len(answers) > len(before_term) + 2,
                               what="the client is answered after the TERM", timeout=30,
                               describe=lambda: repr(answers[-3:]))
        finally:
            stop.set()
            client.join(20)
        try:
            assert [h.finish() for h in arriving] == ["closed unanswered"] * 2
            failures = [a for a in answers if a not in ("1", "2")]
            # An old uvicorn worker that stops just as it accepts a connection closes it
            # unanswered (a rare race, also seen on the servers page): allow one such failure.
            unanswered = [f for f in failures if "Server disconnected without sending" in f]
            assert failures == unanswered and len(unanswered) <= 1, failures[:3]
            assert answers[0] == "1" and answers[-1] == "2"
            assert {"1", "2"} <= set(before_term), "both sets of workers answered side by side"
            assert json_on_new_connection(server)["version"] == "2"
        finally:
            if new_master is not None:
                new_master.send_signal(signal.SIGTERM)
                new_master.wait(30)
        assert server.stop() == 0


# --------------------------------------------------------------------------- max-requests


RECYCLED = {
    "uvicorn-worker": r"Maximum request limit of \d+ exceeded",
    "asgi": r"Autorestarting worker after current request",
    "uvicorn": r"Maximum request limit of \d+ exceeded",
}


@pytest.mark.parametrize("section", RECYCLED)
def test_max_requests_recycles_workers(section: str, log_dir: Path) -> None:
    """--max-requests 4 with jitter 2: a worker is replaced after it has served at least 4
    requests, and the log says why; requests sent one at a time soon reach a replacement."""
    with harness.serving(f"{MAX_REQUESTS}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        served = Counter()
        errors = []

        def a_replacement_answers() -> bool:
            try:
                served[json_on_new_connection(server)["pid"]] += 1
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            return len(served) >= 3  # the 2 first workers and a replacement

        # One request at a time, until a worker that replaced one answers: the first ones
        # serve on while the replacement boots (seconds, on a loaded machine).
        harness.wait_until(a_replacement_answers, what="a replacement worker answers",
                           timeout=90, interval=0.05, server=server,
                           describe=lambda: f"{served}, errors {errors[-3:]}")
        # Before the replacement, the first workers served at least one limit's worth (the
        # harness's readiness check was request number 1; the replacement served the last).
        assert 1 + sum(served.values()) - 1 >= 4, served
        log = server.log()
        assert re.search(RECYCLED[section], log), f"no log line says why: {RECYCLED[section]!r}"
        limits = {int(n) for n in re.findall(r"Maximum request limit of (\d+) exceeded", log)}
        assert limits <= {4, 5, 6}, limits  # --max-requests 4 plus a jitter of 0 to 2
        server.wait_for_workers(2)  # stop only booted workers (see the asgi TERM test below)


def test_max_requests_is_overshot_by_a_burst(log_dir: Path) -> None:
    """The asgi worker counts a request when it has answered it and stops on its once-a-second
    loop round, never when a connection is accepted: 24 requests sent at once, each taking
    2 s, are all served by the two first workers, so at least one of them serves far more
    than its limit of at most 6."""
    with harness.serving(f"{MAX_REQUESTS}:asgi", log_dir=log_dir, cwd=APP.folder) as server:
        first = {w.pid for w in server.wait_for_workers(2)}
        burst = [in_background(harness.timed_outcome, server, "/await/2") for _ in range(24)]
        served = Counter()
        for thread, box in burst:
            thread.join(60)
            outcome, _ = box["result"]
            if isinstance(outcome, tuple) and outcome[0] == 200:
                served[outcome[1]["pid"]] += 1
        most = max(served[pid] for pid in first)
        assert most > 6 * 1.5, served  # at most 6 is the limit: 4 plus a jitter of 0 to 2
        server.wait_for_workers(2)


def draining_or_gone(server: harness.Server, pid: int) -> bool:
    """The worker has exited, or says it is draining its open connections (the asgi worker)."""
    return not psutil.pid_exists(pid) or bool(
        re.search(rf"\[{pid}\] \[INFO\] Waiting for \d+ connections? to finish", server.log()))


UNANSWERED = ("RemoteProtocolError: Server disconnected", "ReadError: [Errno 104]")


@pytest.mark.parametrize("section, held", [
    ("uvicorn-worker", "closed unanswered"), ("uvicorn", "closed unanswered"), ("asgi", "answered"),
])
def test_max_requests_under_traffic(section: str, held: str, log_dir: Path) -> None:
    """Recycling a worker under steady traffic: a Uvicorn worker (the uvicorn worker or
    `uvicorn --workers`) that reaches its limit closes, unanswered, every request it has
    accepted but not fully read, while the asgi worker finishes reading and answers it.

    Certain, not a race: each of the first workers holds a half-sent request while four
    clients send whole requests without pause, until both first workers have exited (or say
    they are draining); then the rest of each half-sent request is sent. The clients' own
    failures are counted: none on the asgi worker, and on the Uvicorn ones only that same
    closing (a request that happened to be arriving when its worker stopped)."""
    with harness.serving(f"{MAX_REQUESTS}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        first = {w.pid for w in server.wait_for_workers(2)}
        arriving = harness.hold_one_connection_per_worker(server, first)
        # Finished, the extras would count towards the limit of 4 (a loaded kernel may hand
        # one worker three of them, and it would recycle before the traffic starts).
        arriving.close_extras()
        answered: Counter = Counter()
        failures: list[str] = []
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                try:
                    answered[json_on_new_connection(server, timeout=60)["pid"]] += 1
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

        clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for thread in clients:
            thread.start()
        try:
            harness.wait_until(lambda: all(draining_or_gone(server, pid) for pid in first),
                               what="both first workers reached their limit and stopped",
                               timeout=60, server=server)
            outcomes = [half.finish() for half in arriving]
            # Keep the traffic going through a few more generations of workers.
            harness.wait_until(lambda: len(answered) >= 8, what="eight workers have answered",
                               timeout=90, server=server, describe=lambda: str(answered))
        finally:
            stop.set()
            for thread in clients:
                thread.join(40)
        recycled = len(answered) - 2
        print(f"{section}: {sum(answered.values())} answered by {len(answered)} workers, "
              f"{len(failures)} failed: {failures[:4]}")
        assert outcomes == [held, held], outcomes
        allowed = [f for f in failures if held == "closed unanswered" and f.startswith(UNANSWERED)]
        assert failures == allowed, f"{len(failures)} failures over {recycled} recycles: {failures}"
        server.wait_for_workers(2)  # stop only booted workers (see the asgi TERM test)


def test_uvicorn_limit_max_requests_alone_stops_the_server(log_dir: Path) -> None:
    """Without a supervisor (no --workers), reaching --limit-max-requests ends the server."""
    with harness.serving(
        f"{MAX_REQUESTS}:uvicorn-single", log_dir=log_dir, cwd=APP.folder, expect_clean=False
    ) as server:
        answered = 0

        def it_stops_answering() -> bool:
            nonlocal answered
            try:
                json_on_new_connection(server, timeout=5)
            except httpx.HTTPError:
                return True
            answered += 1
            return False

        # Uvicorn looks at its count on a tick (every 0.1 s), so a few more than the limit may
        # be answered first; the server then ends.
        harness.wait_until(it_stops_answering, what="the server stops answering", timeout=60,
                           interval=0.05, describe=lambda: f"{answered} answered")
        server.proc.wait(60)
        assert 1 + answered >= 4  # the harness's readiness check was request number 1
        assert server.proc.returncode == 0
        assert "Maximum request limit of 4 exceeded" in server.log()


# --------------------------------------------------------------------------- --reload


def deploy_until_served(server: harness.Server, app_dir: Path, version: str,
                        timeout: float = 30) -> dict:
    """Deploy ``version`` and wait until it is served. Deployed again while the old version
    still answers: Gunicorn's reloader takes its first file times on its first polling round,
    and a change made before that round is its baseline."""
    seen = ["nothing yet"]
    deploy(app_dir, version)

    def serves_it() -> dict | None:
        try:
            answer = json_on_new_connection(server, timeout=5)
        except httpx.HTTPError as exc:
            seen[0] = f"{type(exc).__name__} (restarting)"
            return None
        seen[0] = repr(answer)
        if answer["version"] == version:
            return answer
        deploy(app_dir, version)  # not noticed yet
        return None

    return harness.wait_until(serves_it, what=f"version {version} is served", timeout=timeout,
                              interval=0.5, describe=lambda: seen[0])


@pytest.mark.parametrize("section", ["uvicorn", "gunicorn-asgi"])
def test_reload_restarts_on_file_change(section: str, app_dir: Path, log_dir: Path) -> None:
    """--reload watches the files: saving main.py restarts the server process with it."""
    with harness.serving(f"{RELOAD}:{section}", log_dir=log_dir, cwd=app_dir) as server:
        before = json_on_new_connection(server)
        assert before["version"] == "1"
        after = deploy_until_served(server, app_dir, "2")
        assert after["pid"] != before["pid"]


def test_gunicorn_reload_serves_a_half_saved_file_to_clients(app_dir: Path, log_dir: Path) -> None:
    """With --reload (asgi worker), a syntax error on disk becomes every client's answer."""
    with harness.serving(f"{RELOAD}:gunicorn-asgi", log_dir=log_dir, cwd=app_dir) as server:
        assert json_on_new_connection(server)["version"] == "1"
        main = app_dir / "main.py"
        half_saved = main.read_text() + "\ndef half_saved(:\n"
        main.write_text(half_saved)
        seen: list[object] = [None]

        def answers_500() -> bool:
            seen[0], _ = harness.timed_outcome(server, "/")
            if isinstance(seen[0], tuple) and seen[0][0] == 200:
                # Saved again while the old code answers: Gunicorn's reloader takes its first
                # file times on its first polling round, and a change before that is its baseline.
                main.write_text(half_saved)
            return isinstance(seen[0], tuple) and seen[0][0] == 500

        harness.wait_until(answers_500, what="the half-saved file is every client's answer",
                           timeout=30, interval=0.5, describe=lambda: repr(seen[0]))
        outcome = seen[0]
        assert outcome[1].startswith("Application error: invalid syntax (main.py, line"), outcome


def test_gunicorn_reload_does_nothing_with_uvicorn_worker(app_dir: Path, log_dir: Path) -> None:
    """Gunicorn's reloader notices the change, but uvicorn-worker never exits: old code stays."""
    with harness.serving(
        f"{RELOAD}:gunicorn-uvicorn-worker", log_dir=log_dir, cwd=app_dir
    ) as server:
        [worker] = server.wait_for_workers(1)

        def deployed_and_noticed() -> bool:
            # The reloader polls once a second and takes its first file times only on its first
            # round: a change made before that round is its baseline, so deploy until noticed.
            deploy(app_dir, "2")
            return re.search(r"Worker reloading: .*main\.py modified", server.log())

        harness.wait_until(deployed_and_noticed, what="the reloader notices main.py changed",
                           timeout=30, interval=1.5, server=server)
        harness.observe_for(2, "a worker that would exit and come back with new code")
        assert json_on_new_connection(server) == {"version": "1", "pid": worker.pid}
        assert [w.pid for w in server.workers()] == [worker.pid]


# --------------------------------------------------------------------------- --preload


def sockets_by_worker(server: harness.Server) -> dict[int, int]:
    """{worker pid: local port of its metrics socket}, asking until both workers answered."""
    found: dict[int, int] = {}

    def both_answered() -> bool:
        answer = json_on_new_connection(server, "/socket")
        found[answer["pid"]] = answer["local_port"]
        return len(found) == 2

    harness.wait_until(both_answered, what="both workers answered", interval=0, timeout=60,
                       describe=lambda: repr(found))  # the kernel may favour one worker
    return found


@pytest.mark.parametrize(
    ("section", "shared"),
    [
        ("import", False),
        ("import-preload", True),
        ("lifespan-preload", False),
    ],
)
def test_preload_shares_sockets_opened_at_import(section: str, shared: bool, log_dir: Path) -> None:
    """A socket opened at import is one socket in every worker under --preload (same local
    port); opened in the lifespan, each worker has its own even with --preload."""
    with harness.serving(f"{PRELOAD}:{section}", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        ports = sockets_by_worker(server)
        assert (len(set(ports.values())) == 1) is shared, ports
