"""docs/concurrency.md: the event loop and your endpoint, measured against real servers.

Timing assertions compare runs made in the same test against the same server, with generous
margins: the machine has 2 cores and other test runs share it. Where physics gives a hard
bound (eight 0.6 s sleeps one after another cannot take less than 4.8 s) the test uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

import harness
from tools import _concurrency as measure  # the page's measuring code (tooling)
from tools import loadguard

SNIPPETS = harness.SNIPPETS / "concurrency"

#: The apps this page shows, and the commands on the page that serve them (tests start those).
APPS = {
    "concurrency/main.py": ["concurrency/serve.sh"],
    "concurrency/threadpool.py": ["concurrency/serve_threadpool.sh",
                                  "concurrency/serve_threadpool_4.sh"],
    "concurrency/gather.py": ["concurrency/serve_gather.sh"],
    "concurrency/tasks.py": ["concurrency/serve_tasks.sh", "concurrency/serve_tasks_gunicorn.sh",
                             "concurrency/serve_tasks_asgi.sh"],
    "concurrency/cpu.py": ["concurrency/serve_cpu.sh", "concurrency/serve_cpu_2_workers.sh"],
    "concurrency/heavy.py": ["concurrency/serve_dirty.sh"],
    "concurrency/clients.py": ["concurrency/serve_clients.sh"],
}


def test_commands_serve_the_apps_shown() -> None:
    for app, commands in APPS.items():
        module = Path(app).stem
        for command in commands:
            assert re.search(rf"\b{module}:app\b", harness.snippet(command).text), command
    assert "--dirty-app heavy:Burner" in harness.snippet("concurrency/serve_dirty.sh").text



@contextlib.contextmanager
def uvicorn_alone(ref: str, log_dir: Path, **kwargs) -> Iterator[harness.Server]:
    """Serve a plain ``uvicorn`` command (one process) and check that it stops cleanly.

    A single Uvicorn process handles SIGTERM gracefully and then re-raises the signal, so it
    exits "killed by SIGTERM" (-15), not 0; its log says it finished.
    """
    with harness.serving(ref, log_dir=log_dir, expect_clean=False, **kwargs) as server:
        yield server
    rc = server.proc.returncode
    assert rc in (0, -signal.SIGTERM), f"uvicorn exited with {rc}\n{server.log()[-2000:]}"
    assert "Finished server process" in server.log()


def send_requests(server: harness.Server, path: str, requests: int,
                  concurrency: int | None = None, **kwargs) -> measure.Run:
    """Send ``requests`` GETs, ``concurrency`` at a time (default: all at once), pinging
    meanwhile: what they took, and how the event loop answered."""
    return asyncio.run(measure.run(server.url(""), path, requests, concurrency or requests,
                                   **kwargs))


def ran_together(calls: list[dict[str, float]]) -> bool:
    """Every call had started (got its thread) before any call ended."""
    return max(c["started"] for c in calls) < min(c["ended"] for c in calls)


def waited_for_a_thread(call: dict[str, float], others: list[dict[str, float]]) -> bool:
    """The call got its thread only once one of the others had given theirs back."""
    return call["started"] >= min(c["ended"] for c in others) - 0.05


# --------------------------------------------------------------------------- the measurements

IO_REQUESTS, IO_SECONDS = measure.TEST.io_requests, measure.TEST.io_seconds  # 8 x 0.6 s
CPU = "concurrency/serve_cpu.sh"


def as_run(data: dict) -> measure.Run:
    data = dict(data, cpu_by_process={int(pid): t for pid, t in data["cpu_by_process"].items()})
    return measure.Run(**data)


def run_measure_command(log_dir: Path) -> dict:
    """``python -m tools measure concurrency`` on the test scale: its table and its raw runs
    (``--under-load``: the suite's machine is busy; nothing is committed)."""
    out, raw = log_dir / "measured.md", log_dir / "measured.json"
    result = subprocess.run(
        [sys.executable, "-m", "tools", "measure", "concurrency", loadguard.UNDER_LOAD_FLAG,
         "--out", str(log_dir)], cwd=harness.ROOT, capture_output=True, text=True, timeout=280,
        env={**os.environ, "MEASURE_SCALE": "test", "MEASURE_DATA": str(raw),
             "HANDBOOK_LOG_DIR": str(log_dir)})
    # The measurement takes every row or none: one row whose server does not exist in a
    # version set's release (the dirty workers before Gunicorn 25) stops the whole of it.
    missing = re.search(r"not applicable: (.*)", result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"{measure.COMMAND}: exit code {result.returncode}"
        + (f": one of its rows is not applicable ({missing[1]})" if missing else "")
        + f"\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    runs = json.loads(raw.read_text("utf-8"))
    return {
        "output": result.stdout,
        "table": out.read_text("utf-8"),
        "io": {path: as_run(r) for path, r in runs["io"].items()},
        "cpu": {key: as_run(r) for key, r in runs["cpu"].items()},
    }


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One measurement per test session, shared by the tests that read it."""
    return harness.once(tmp_path_factory, "concurrency-measured", run_measure_command)


# --------------------------------------------------------------------------- one event loop


def test_await_lets_other_requests_run(measured: dict) -> None:
    """Eight awaiting requests overlap: every wait began before the first one ended."""
    awaiting, blocking = measured["io"]["/io/await"], measured["io"]["/io/blocking"]
    assert len(awaiting.answers) == IO_REQUESTS and ran_together(awaiting.answers)
    assert awaiting.wall * 2 <= blocking.wall, (awaiting.wall, blocking.wall)
    # The event loop stayed free: /ping answered far sooner than beside blocking waits.
    assert awaiting.ping and awaiting.ping_median * 3 < blocking.ping_median, (
        awaiting.ping_median, blocking.ping_median)


def test_blocking_call_in_async_def_stalls_the_worker(measured: dict) -> None:
    """time.sleep in async def: the requests run one after another and /ping waits too."""
    blocking = measured["io"]["/io/blocking"]
    # One after another: each wait began only after the previous one had ended...
    waits = sorted(blocking.answers, key=lambda a: a["started"])
    assert len(waits) == IO_REQUESTS
    assert all(b["started"] >= a["ended"] - 0.01 for a, b in zip(waits, waits[1:], strict=False))
    # ...so all of them took at least the sum of the sleeps.
    assert blocking.wall >= 0.95 * IO_REQUESTS * IO_SECONDS
    # A /ping sent meanwhile waited for a sleeping request to give the loop back.
    assert blocking.ping_max >= 0.5 * IO_SECONDS
    assert blocking.ping_max >= 5 * measured["io"]["/io/await"].ping_median


def test_def_endpoint_runs_in_the_thread_pool(measured: dict) -> None:
    """The same time.sleep in a plain def endpoint does not block the event loop."""
    in_threads, blocking = measured["io"]["/io/def"], measured["io"]["/io/blocking"]
    assert len(in_threads.answers) == IO_REQUESTS and ran_together(in_threads.answers)
    assert in_threads.wall * 2 <= blocking.wall, (in_threads.wall, blocking.wall)
    assert in_threads.ping_median * 3 < blocking.ping_median, (
        in_threads.ping_median, blocking.ping_median)


def test_ruff_flags_the_blocking_call() -> None:
    """Ruff's ASYNC rules find time.sleep inside async def (main.py silences it on purpose)."""
    source = (SNIPPETS / "main.py").read_text("utf-8")
    unsilenced = re.sub(r"\s*# noqa: ASYNC251.*", "", source)
    assert unsilenced != source
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run(
        [ruff, "check", "--select", "ASYNC", "--output-format", "concise", "--stdin-filename",
         "main.py", "-"], input=unsilenced, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "ASYNC251" in result.stdout and result.stdout.count("ASYNC") == 1, result.stdout


# --------------------------------------------------------------------------- thread pool


def test_default_thread_limiter_has_40_tokens(log_dir: Path) -> None:
    """FastAPI runs def endpoints through AnyIO's default limiter: 40 tokens per event loop."""
    with uvicorn_alone("concurrency/serve_threadpool.sh", log_dir) as server:
        assert server.get("/threadpool").json() == {"total_tokens": 40, "borrowed_tokens": 0}


def test_limiter_lives_in_the_event_loop() -> None:
    """Outside a running event loop there is no limiter to change (so: set it in lifespan)."""
    with pytest.raises(RuntimeError):
        anyio.to_thread.current_default_thread_limiter()


@pytest.fixture(scope="module")
def four_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    with uvicorn_alone("concurrency/serve_threadpool_4.sh", tmp_path_factory.mktemp("tp")) as s:
        yield s


def test_lifespan_resizes_the_thread_limiter(four_tokens: harness.Server) -> None:
    assert four_tokens.get("/threadpool").json()["total_tokens"] == 4


async def _naps(base_url: str, path: str, count: int) -> list[dict[str, float]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60,
                                 limits=httpx.Limits(max_connections=count)) as client:
        responses = await asyncio.gather(*(client.get(path) for _ in range(count)))
    return sorted((r.raise_for_status().json() for r in responses), key=lambda n: n["started"])


def naps(server: harness.Server, path: str, count: int) -> list[dict[str, float]]:
    """`count` requests at once; each answer says when its call got a thread and gave it back
    (time.monotonic() in the server, the same clock as here). Sorted by start."""
    return asyncio.run(_naps(server.url(""), path, count))


def test_requests_past_the_limit_wait_for_a_thread(four_tokens: harness.Server) -> None:
    """With 4 tokens, 4 sleeping def requests run at once; a 5th starts only when one of them
    has finished and given its token back."""
    calls = naps(four_tokens, "/sync?seconds=1", 5)
    assert ran_together(calls[:4])
    assert waited_for_a_thread(calls[4], calls[:4])


def test_asyncio_to_thread_uses_another_pool(four_tokens: harness.Server) -> None:
    """asyncio.to_thread ignores AnyIO's limiter: it uses the loop's default executor,
    min(32, CPUs + 4) threads (6 on a 2-core machine)."""
    size = min(32, (os.cpu_count() or 1) + 4)
    assert size > 4
    assert ran_together(naps(four_tokens, "/to-thread?seconds=1", size))  # more than 4 at once
    limited = naps(four_tokens, "/sync?seconds=1", size)  # def endpoints: 4 at a time
    assert ran_together(limited[:4]) and waited_for_a_thread(limited[4], limited[:4])
    one_more = naps(four_tokens, "/to-thread?seconds=1", size + 1)  # the executor is full
    assert ran_together(one_more[:size]) and waited_for_a_thread(one_more[size], one_more[:size])


# --------------------------------------------------------------------------- gather


@pytest.fixture(scope="module")
def gather_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Server]:
    with uvicorn_alone("concurrency/serve_gather.sh", tmp_path_factory.mktemp("gather")) as s:
        yield s


def timed_response(server: harness.Server, path: str) -> tuple[httpx.Response, float]:
    """The response to one GET (which must come), and the seconds it took."""
    start = time.perf_counter()
    response = server.get(path)
    return response, time.perf_counter() - start


def test_gather_runs_independent_calls_at_once(gather_server: harness.Server) -> None:
    # Three 2 s waits: in a row they take 6 s, gathered 2 s. Each is timed twice and the
    # faster kept, so a moment of load on a shared machine does not count as the app's time.
    runs = [(timed_response(gather_server, "/sequential?seconds=2"),
             timed_response(gather_server, "/gather?seconds=2")) for _ in range(2)]
    (sequential, _), (gathered, _) = runs[0]
    assert sequential.json() == gathered.json() == ["a", "b", "c"]  # results keep their order
    t_seq = min(seq[1] for seq, _ in runs)
    t_gather = min(gat[1] for _, gat in runs)
    assert t_seq >= 6  # three waits in a row: a hard lower bound
    # Both are one request with the same overhead, so the 4 s of waits that gather overlaps
    # show as the difference (at least 3 s of the 4 s).
    assert t_seq - t_gather >= 3, (t_gather, t_seq)


def test_gather_failure_leaves_the_other_calls_running(gather_server: harness.Server) -> None:
    """Without return_exceptions the first error is raised at once, but the slower call is
    not cancelled: it runs to the end after the request has already failed."""
    response = gather_server.get("/gather-failing?seconds=1")
    assert response.status_code == 500  # after 0.5 s, when the first call failed
    # Had gather cancelled it then, the slow call would never finish.
    harness.wait_until(lambda: "gather-slow" in gather_server.get("/finished").json(),
                       what="the slow call finishes", timeout=10, server=gather_server)


def test_return_exceptions_returns_errors_as_results(gather_server: harness.Server) -> None:
    response = gather_server.get("/gather-failing?seconds=0.4&return_exceptions=true")
    assert response.status_code == 200
    assert response.json() == ["error: gather-fails failed", "gather-slow"]


def test_taskgroup_cancels_the_other_calls(gather_server: harness.Server) -> None:
    response, took = timed_response(gather_server, "/taskgroup-failing?seconds=1")
    assert response.status_code == 500
    harness.observe_for(max(0.0, 2.0 - took), "the slow call to have finished, had it run on")
    assert "taskgroup-slow" not in gather_server.get("/finished").json()


# --------------------------------------------------------------------------- after the response

TASK_SERVERS = {
    "uvicorn": "concurrency/serve_tasks.sh",
    "gunicorn+uvicorn-worker": "concurrency/serve_tasks_gunicorn.sh",
    "gunicorn-asgi": "concurrency/serve_tasks_asgi.sh",
}


def post_then_stop(command: str, endpoint: str, log_dir: Path) -> tuple[bool, bool, str]:
    """POST one event, SIGTERM the server right after the 202, and report
    (published before the response?, published by the time the server had exited?, log)."""
    outbox = log_dir / "outbox"
    server = harness.start(command, log_dir=log_dir, env={"OUTBOX_DIR": str(outbox)})
    marker = outbox / "7.published"
    try:
        server.wait_ready("/docs")
        if "gunicorn" in command:
            server.wait_for_workers(1)
        with server.client() as client:
            response = client.post(f"/events/7/{endpoint}")
        assert response.status_code == 202 and response.json() == {"accepted": 7}
        before = marker.exists()
        rc = server.stop(timeout=30, expect_clean=False)
        assert rc in (0, -signal.SIGTERM), f"exit code {rc}\n{server.log()[-2000:]}"
        assert not server.processes(), "the server left processes behind"
    finally:
        harness.kill_group(server.proc.pid)
    return before, marker.exists(), server.log()


TWO_SERVERS = {k: TASK_SERVERS[k] for k in ("uvicorn", "gunicorn-asgi")}


@pytest.mark.parametrize("command", TWO_SERVERS.values(), ids=TWO_SERVERS.keys())
def test_fire_and_forget_task_is_lost_at_shutdown(command: str, log_dir: Path) -> None:
    before, after, _ = post_then_stop(command, "forget", log_dir)
    assert not before and not after


@pytest.mark.parametrize("command", TWO_SERVERS.values(), ids=TWO_SERVERS.keys())
def test_kept_task_is_awaited_at_shutdown(command: str, log_dir: Path) -> None:
    before, after, _ = post_then_stop(command, "kept", log_dir)
    assert not before and after


@pytest.mark.parametrize("command", [TASK_SERVERS["uvicorn"],
                                     TASK_SERVERS["gunicorn+uvicorn-worker"]],
                         ids=["uvicorn", "gunicorn+uvicorn-worker"])
def test_background_tasks_finish_before_uvicorn_exits(command: str, log_dir: Path) -> None:
    before, after, log = post_then_stop(command, "background", log_dir)
    assert not before and after
    assert "Waiting for background tasks to complete" in log


def test_background_tasks_are_lost_by_gunicorn_asgi_worker(log_dir: Path) -> None:
    """Gunicorn's own asgi worker waits for open connections, not for the request's task:
    once the client has its 202 and has closed the connection, SIGTERM cancels the work."""
    before, after, _ = post_then_stop(TASK_SERVERS["gunicorn-asgi"], "background", log_dir)
    assert not before and not after


# --------------------------------------------------------------------------- CPU-bound work
# Each variant got the same requests (6, 3 at a time, burn(1_000_000)) with /ping sampled
# meanwhile. Processes compute in parallel only when cores are free, and other test runs share
# this machine, so these tests check where the work runs and how the loop answers; the
# requests per second are in the committed table only.

CPU_N = measure.TEST.cpu_n


def own_cpu(run: measure.Run) -> float:
    """CPU seconds used by the worker processes that answered, not by their helpers."""
    return sum(t for pid, t in run.cpu_by_process.items() if pid in run.pids)


def test_cpu_work_inline_stalls_the_event_loop(measured: dict) -> None:
    """Inline CPU work holds the loop: /ping waits for whole computations."""
    inline = measured["cpu"][f"{CPU} /cpu/inline"]
    assert inline.ping_median >= 2 * measured["cpu"][f"{CPU} /cpu/to-thread"].ping_median
    assert inline.ping_median >= 4 * measured["cpu"][f"{CPU} /cpu/process"].ping_median


def test_to_thread_keeps_the_loop_answering_but_adds_no_cpu(measured: dict) -> None:
    """In a thread the loop still answers /ping, but the GIL caps the process at one core."""
    inline = measured["cpu"][f"{CPU} /cpu/inline"]
    for variant in ("/cpu/to-thread", "/cpu/def"):
        run = measured["cpu"][f"{CPU} {variant}"]
        assert run.ping_median * 2 <= inline.ping_median, variant
        assert run.cores_used <= 1.15, (variant, run.cores_used)
        assert own_cpu(run) >= 0.9 * run.cpu_seconds  # all of it inside the one worker
    assert inline.cores_used <= 1.15


def test_process_pool_moves_the_work_out_of_the_worker(measured: dict) -> None:
    """With a process pool the computing happens in other processes, each with its own GIL:
    the worker's own CPU time is a small part of the total and /ping answers fastest."""
    run = measured["cpu"][f"{CPU} /cpu/process"]
    helpers = {pid: t for pid, t in run.cpu_by_process.items() if pid not in run.pids}
    assert sum(1 for t in helpers.values() if t > 0.05) >= 2, helpers  # two pool processes
    assert own_cpu(run) <= 0.25 * run.cpu_seconds
    assert run.ping_median * 2 <= measured["cpu"][f"{CPU} /cpu/to-thread"].ping_median


def test_two_workers_compute_in_two_processes(measured: dict) -> None:
    """With two workers, inline CPU work runs in two processes (two GILs), both of them busy."""
    run = measured["cpu"]["concurrency/serve_cpu_2_workers.sh /cpu/inline"]
    assert len(run.pids) == 2, "both workers answered"
    assert all(run.cpu_by_process[pid] > 0.05 for pid in run.pids), run.cpu_by_process


# --------------------------------------------------------------------------- dirty workers


def short_tmpdir() -> Path:
    """A fresh directory with a short path: the arbiter's Unix socket path must fit 108 bytes."""
    return Path(tempfile.mkdtemp(prefix="hb-dirty-", dir="/tmp"))


def start_dirty(log_dir: Path, env: dict[str, str] | None = None,
                tmpdir: Path | None = None) -> harness.Server:
    """serve_dirty.sh, waited for: one HTTP worker and two dirty workers ready.

    Each server gets its own TMPDIR: Gunicorn 27.0.1 keeps the dirty arbiter's PID file there,
    named after the app, and a server starting with the same name kills the arbiter it names
    (see test_second_server_with_the_same_name_breaks_dirty_calls). The harness counts the
    master's children as workers, and the dirty arbiter is one of them, so this waits on the
    log instead."""
    tmpdir = tmpdir or short_tmpdir()
    log_dir.mkdir(parents=True, exist_ok=True)
    server = harness.start("concurrency/serve_dirty.sh", log_dir=log_dir,
                           env={"TMPDIR": str(tmpdir), **(env or {})})
    server.wait_ready("/ping")
    server.wait_for_log(r"Dirty worker \d+ listening(.|\n)*Dirty worker \d+ listening")
    return server


def stop_dirty(server: harness.Server) -> None:
    server.stop(timeout=2, expect_clean=False)  # see test_dirty_workers_delay_shutdown_after_use
    harness.kill_group(server.proc.pid)
    shutil.rmtree(server.env["TMPDIR"], ignore_errors=True)


def test_second_server_with_the_same_name_breaks_dirty_calls(log_dir: Path) -> None:
    """Starting a second Gunicorn with the same app name and the same TMPDIR kills the first
    one's dirty arbiter (its "orphan" clean-up trusts the PID file). The first master starts a
    new arbiter on a new socket, but its HTTP workers still call the old one and fail. A second
    server with its own TMPDIR leaves the first alone."""
    shared = short_tmpdir()
    first = start_dirty(log_dir / "first", tmpdir=shared)
    try:
        assert first.get("/cpu/dirty?n=10").status_code == 200
        elsewhere = start_dirty(log_dir / "elsewhere")  # its own TMPDIR
        stop_dirty(elsewhere)
        assert first.get("/cpu/dirty?n=10").status_code == 200
        same = start_dirty(log_dir / "same", tmpdir=shared)
        try:
            first.wait_for_log(r"Spawning dirty arbiter")  # its arbiter was killed
            assert first.get("/cpu/dirty?n=10").status_code == 500
            assert same.get("/cpu/dirty?n=10").status_code == 200
        finally:
            stop_dirty(same)
    finally:
        stop_dirty(first)


def test_dirty_workers_run_cpu_work_beside_the_http_worker(log_dir: Path, measured) -> None:
    """The dirty workers are the dirty arbiter's children and compute what the HTTP worker
    asks; under load (the measure tool's run) the HTTP worker's /ping kept answering."""
    busy = measured["cpu"]["concurrency/serve_dirty.sh /cpu/dirty"]
    assert len(busy.pids) == 1  # one HTTP worker answered everything
    assert busy.ping_median * 3 <= sorted(busy.latencies)[len(busy.latencies) // 2]
    assert sum(1 for pid, t in busy.cpu_by_process.items()
               if pid not in busy.pids and t > 0.05) >= 2  # two dirty workers computed
    server = start_dirty(log_dir)
    try:
        master = server.main_process()
        arbiter = int(re.search(r"Spawned dirty arbiter \(pid: (\d+)\)", server.log())[1])
        dirty = {p.pid for p in master.children(recursive=True) if p.ppid() == arbiter}
        assert len(dirty) == 2
        http_workers = {p.pid for p in master.children()} - {arbiter}
        answer = server.get("/cpu/dirty?n=1000").json()
        assert answer["result"] == sum(i * i for i in range(1000))
        assert answer["pid"] in http_workers and answer["dirty_pid"] in dirty
    finally:
        stop_dirty(server)


def test_dirty_client_per_context_leaks_a_connection_per_request(log_dir: Path) -> None:
    """get_dirty_client_async() keeps its client in a context variable; Gunicorn's asgi
    worker (27.0.1) runs each request in a task of its own, so in a fresh context, even on one
    keep-alive connection (as here), and each request leaves one more socket open. A client per
    request in ``async with`` (as heavy.py does) closes it."""
    server = start_dirty(log_dir)
    try:
        arbiter = int(re.search(r"Spawned dirty arbiter \(pid: (\d+)\)", server.log())[1])
        (worker,) = [p for p in server.main_process().children() if p.pid != arbiter]
        with server.client() as client:
            opened = {}
            for path in ("/cpu/dirty?n=10", "/cpu/dirty-context-client?n=10"):
                before = worker.num_fds()
                for _ in range(30):
                    client.get(path).raise_for_status()
                opened[path] = worker.num_fds() - before
        assert opened["/cpu/dirty?n=10"] <= 3, f"sockets left open by 30 requests: {opened}"
        assert opened["/cpu/dirty-context-client?n=10"] >= 25, (
            f"the per-context client did not leak: sockets left open by 30 requests: {opened}")
    finally:
        stop_dirty(server)


def stop_after(used: bool, log_dir: Path) -> tuple[int, float, str]:
    """Start the dirty-worker server (graceful timeout 6 s), call a dirty worker once if
    ``used``, SIGTERM it; return its exit code, how long the stop took, and its log."""
    server = start_dirty(log_dir, env={"GUNICORN_CMD_ARGS": "--graceful-timeout 6"})
    try:
        if used:
            assert server.get("/cpu/dirty?n=10").status_code == 200
        start = time.monotonic()
        rc = server.stop(timeout=20, expect_clean=False)
        took = time.monotonic() - start
    finally:
        stop_dirty(server)
    return rc, took, server.log()


@pytest.mark.parametrize("used", [False, True], ids=["idle", "after-one-call"])
def test_dirty_workers_delay_shutdown_after_use(used: bool, log_dir: Path) -> None:
    """Gunicorn 27.0.1 on Python 3.12: once a dirty worker has served a call, SIGTERM can wait
    the whole --graceful-timeout, after which the master kills the dirty arbiter; a server
    whose dirty workers were never called stops at once.

    Not every time: in one suite run of many, the worker that had served the call exited at
    once. So the used case starts up to five servers until one waits it out (it usually is the
    first). The test shortens the graceful timeout to 6 s (the default is 30 s) through
    GUNICORN_CMD_ARGS, which the harness otherwise removes from the environment."""
    if not used:
        rc, took, log = stop_after(False, log_dir)
        assert rc == 0
        # The master logs the arbiter's exit status; Gunicorn 25 (whose master can reap the
        # arbiter without logging it) has only the arbiter's own last line.
        exited = r"Dirty arbiter \(pid:\d+\) exited|Dirty arbiter exiting \(pid: \d+\)"
        assert re.search(exited, log), f"the dirty arbiter did not exit: {log[-1500:]}"
        assert "killed by signal" not in log, log[-1500:]
        return
    stops = []
    while len(stops) < 5 and not any(took >= 5.5 for _, took, _ in stops):
        stops.append(stop_after(True, log_dir))
        assert stops[-1][0] == 0, stops[-1][2][-1500:]
    assert any(took >= 5.5 for _, took, _ in stops), (
        [round(t, 1) for _, t, _ in stops], stops[-1][2][-1500:])  # the master waited it out


# --------------------------------------------------------------------------- the table


def test_measure_command_regenerates_the_table(measured: dict) -> None:
    """The page's table comes from the measure tool; the test scale writes a complete table
    too (the committed one is the full run)."""
    text = measured["table"]
    assert text in measured["output"]
    for _, what in measure.IO_ROWS:
        assert re.search(rf"^\| {re.escape(what)} \| [\d.]+ s \|", text, re.M), what
    for _, _, what in measure.CPU_ROWS:
        assert re.search(rf"^\| {re.escape(what)} \| [\d.]+ \| [\d.]+x \|", text, re.M), what
    assert "Measured on" in text and measure.COMMAND in text
    committed = harness.snippet("concurrency/measured.md").text
    for _, what in measure.IO_ROWS:
        assert f"| {what} |" in committed
    for _, _, what in measure.CPU_ROWS:
        assert f"| {what} |" in committed
    assert "10 requests at once, each waiting 1 s" in committed  # the full scale


def test_committed_tables_are_rendered_from_their_data() -> None:
    """measured.md and its Vietnamese and Chinese versions are what the tool renders from the
    committed data (`python -m tools render concurrency`): the same numbers in every language."""
    data = json.loads(harness.snippet("concurrency/measured.data.json").text)
    md = harness.snippet("concurrency/measured.md").path
    stale = [path.name for path, text in measure.outputs(data, md).items()
             if path.read_text("utf-8") != text]
    assert not stale, f"snippets/concurrency/{', '.join(stale)}: not what " \
        "tools/_concurrency.py renders from measured.data.json; run " \
        "`python -m tools render concurrency`"
    assert {"concurrency/measured.vi.md", "concurrency/measured.zh.md"} <= {
        f"concurrency/{p.name}" for p in measure.outputs(data, md)}


def test_dirty_calls_travel_in_gunicorn_binary_format(log_dir: Path) -> None:
    """The dirty arbiter's socket speaks a binary protocol (gunicorn/dirty/protocol.py), not
    JSON: a request framed that way is answered with a frame that starts with the magic "GD",
    and a JSON request gets no answer at all."""
    from gunicorn.dirty.protocol import HEADER_SIZE, BinaryProtocol
    from gunicorn.dirty.tlv import TLVEncoder

    server = start_dirty(log_dir)
    try:
        path = server.wait_for_log(r"Dirty arbiter listening on (\S+)")[1]

        def exchange(message: bytes) -> bytes:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(30)
                sock.connect(path)
                sock.sendall(message)
                data = b""
                with contextlib.suppress(TimeoutError, ConnectionError):
                    while len(data) < HEADER_SIZE or len(data) < HEADER_SIZE + int.from_bytes(
                            data[4:8], "big"):
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                return data

        answer = exchange(BinaryProtocol.encode_request(7, "heavy:Burner", "burn", args=(10,)))
        assert answer[:2] == b"GD", answer[:32]
        _, request_id, length = BinaryProtocol.decode_header(answer[:HEADER_SIZE])
        payload = TLVEncoder.decode_full(answer[HEADER_SIZE:HEADER_SIZE + length])
        assert request_id == 7 and payload["result"]["result"] == sum(i * i for i in range(10))
        as_json = json.dumps({"app_path": "heavy:Burner", "action": "burn", "args": [10],
                              "kwargs": {}}).encode() + b"\n"
        assert exchange(as_json) == b"", "a JSON request is not understood"
    finally:
        stop_dirty(server)


# --------------------------------------------------------------------------- calling a service


class CountingUpstream:
    """A tiny HTTP/1.1 service on 127.0.0.1 that counts the TCP connections it accepts."""

    def __init__(self) -> None:
        import http.server
        import threading

        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real service allows

            def setup(self) -> None:
                with counter.lock:
                    counter.connections += 1
                super().setup()

            def do_GET(self) -> None:  # noqa: N802
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.lock = threading.Lock()
        self.connections = 0
        self.httpd = http.server.ThreadingHTTPServer((harness.HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{harness.HOST}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return self.connections

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def upstream() -> Iterator[CountingUpstream]:
    service = CountingUpstream()
    try:
        yield service
    finally:
        service.close()


def test_one_client_per_worker_reuses_its_connections(upstream: CountingUpstream,
                                                      log_dir: Path) -> None:
    """Twenty requests: the lifespan client opens one connection to the upstream service and
    reuses it; a client per request opens twenty."""
    requests = 20
    with harness.serving("concurrency/serve_clients.sh", log_dir=log_dir,
                         env={"UPSTREAM_URL": upstream.url}, ready_path="/docs",
                         expect_clean=False) as server:  # uvicorn re-raises SIGTERM: exit -15
        with server.client() as client:
            before = upstream.count()
            for _ in range(requests):
                assert client.get("/shared").json() == {"upstream_status": 200}
            shared = upstream.count() - before
            before = upstream.count()
            for _ in range(requests):
                assert client.get("/per-request").json() == {"upstream_status": 200}
            per_request = upstream.count() - before
    assert shared == 1, f"the shared client opened {shared} connections for {requests} requests"
    assert per_request == requests, f"a client per request opened {per_request} connections"


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements (the quick start's, plus httpx for the shared client) pin every
    package with ==; the environment its commands run in is built from that file alone."""
    harness.only_on_the_pinned_set("it checks what the page's requirements file pins")
    pins = harness.check_reader_env("concurrency", shows=["concurrency/requirements.txt"])
    assert pins == {**harness.requirement_pins("quickstart/requirements.txt"), "httpx": "0.28.1"}
