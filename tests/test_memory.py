"""docs/memory.md: memory that grows in one worker, how to see it, and what ends such a worker.

The app keeps what /leak/{mib} allocates. Requests sent on one kept-alive connection all go
to the same worker, so a test can make exactly one worker grow. Memory is compared within one
run (the leaking worker against the other, before against after), never against a fixed size
this machine happened to show; no number measured here is written to a page.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import harness

APP = harness.snippet("memory/main.py")
harness.snippet("memory/rss.py")  # run by memory/rss.sh
MIB = 2**20

SERVERS = {
    "gunicorn + uvicorn-worker": "memory/serve.sh:uvicorn-worker",
    "gunicorn asgi worker": "memory/serve.sh:asgi",
    "uvicorn --workers": "memory/serve.sh:uvicorn",
}
#: What the parent logs when a worker was killed by SIGKILL (the OOM killer's signal).
GUNICORN_KILLED = r"Worker \(pid:{pid}\) was sent SIGKILL! Perhaps out of memory\?"
KILLED_LOG = {
    "memory/serve.sh:uvicorn-worker": GUNICORN_KILLED,
    "memory/serve.sh:asgi": GUNICORN_KILLED,
    "memory/serve.sh:uvicorn": r"Child process \[{pid}\] died",
}


def leak(client: httpx.Client, mib: int, times: int) -> dict:
    """Send /leak/{mib} ``times`` times on one connection; the last answer (same worker)."""
    answers = [client.get(f"/leak/{mib}").json() for _ in range(times)]
    assert len({a["pid"] for a in answers}) == 1, "one kept-alive connection, one worker"
    return answers[-1]


def sampled(output: str) -> dict[int, list[float]]:
    """rss.py's output as {pid: [RSS in MiB, one per sample]}."""
    found: dict[int, list[float]] = {}
    for pid, rss in re.findall(r"pid=(\d+) rss_mib=([\d.]+)", output):
        found.setdefault(int(pid), []).append(float(rss))
    return found


# --------------------------------------------------------------------------- finding growth


def test_rss_script_shows_the_leaking_worker_grow(log_dir: Path) -> None:
    """rss.py lists every worker with its RSS; after 20 requests that keep 4 MiB each, sent to
    one worker, that worker's RSS has grown by most of the 80 MiB, and the other's has not."""
    with harness.serving(SERVERS["gunicorn + uvicorn-worker"], log_dir=log_dir,
                         cwd=APP.folder) as server:
        workers = {w.pid for w in server.wait_for_workers(2)}
        env = {"MASTER_PID": str(server.main_process().pid)}
        before = sampled(harness.run("memory/rss.sh", env=env, server=server).output)
        assert set(before) == workers and all(len(s) == 3 for s in before.values())
        with server.client() as client:
            leaker = leak(client, 4, 20)["pid"]
        after = sampled(harness.run("memory/rss.sh", env=env, server=server).output)
        (other,) = workers - {leaker}
        grew = {pid: after[pid][-1] - before[pid][-1] for pid in workers}
        assert grew[leaker] >= 60, grew
        assert grew[other] < grew[leaker] / 4, grew


# --------------------------------------------------------------------------- recycling


def test_granian_replaces_a_worker_over_its_rss_limit(log_dir: Path) -> None:
    """--workers-max-rss 300: a worker made to keep 320 MiB is respawned (new PID, memory
    released: its replacement keeps nothing), while the other worker is left alone."""
    with harness.serving("memory/granian.sh", log_dir=log_dir, cwd=APP.folder,
                         ready_timeout=60) as server:
        harness.wait_until(lambda: len(server.workers()) == 2, what="two granian workers",
                           server=server, timeout=60)
        first = {w.pid for w in server.workers()}
        with server.client() as client:
            answer = leak(client, 32, 10)
        leaker = answer["pid"]
        assert answer["kept_mib"] == 320
        server.wait_for_log(r"worker-\d RSS over threshold, gracefully respawning", timeout=60)
        harness.wait_until(
            lambda: leaker not in {w.pid for w in server.workers()}
            and len(server.workers()) == 2,
            what=f"worker {leaker} is replaced", server=server, timeout=60)
        now = {w.pid for w in server.workers()}
        assert first - {leaker} <= now, "the other worker was not touched"
        replacement = (now - first).pop()
        harness.wait_until(lambda: replacement_answers(server, replacement),
                           what="the new worker answers, keeping nothing", server=server,
                           timeout=60)


def replacement_answers(server: harness.Server, pid: int) -> bool:
    """On a new connection: True if the worker ``pid`` answers and keeps nothing."""
    try:
        answer = server.get("/leak/0").json()
    except httpx.HTTPError:
        return False
    return answer["pid"] == pid and answer["kept_mib"] == 0


# --------------------------------------------------------------------------- killed workers


@pytest.mark.parametrize("command", SERVERS.values(), ids=SERVERS.keys())
def test_a_worker_killed_by_sigkill_is_logged_and_replaced(command: str, log_dir: Path) -> None:
    """SIGKILL, the OOM killer's signal, on one worker: the parent logs it (Gunicorn: "Perhaps
    out of memory?"), starts a new worker, and serves on; the memory it held is gone with it."""
    with harness.serving(command, log_dir=log_dir, cwd=APP.folder) as server:
        before = {w.pid for w in server.wait_for_workers(2)}
        with server.client() as client:
            victim = leak(client, 8, 4)["pid"]
        os.kill(victim, signal.SIGKILL)
        server.wait_for_log(KILLED_LOG[command].format(pid=victim))
        harness.wait_until(
            lambda: victim not in {w.pid for w in server.workers()}
            and len(server.ready_worker_pids() & {w.pid for w in server.workers()}) == 2,
            what="a new worker replaces the killed one", server=server)
        assert before - {victim} <= {w.pid for w in server.workers()}
        assert server.get("/").status_code == 200


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[Path]:
    """A memory cgroup limited to ``limit`` bytes (cgroup v1 or v2), removed afterwards.

    This is what ``docker run --memory`` or a Kubernetes memory limit makes. Skips when this
    machine does not let the tests create one (no memory controller, or no permission)."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        parent, limit_file, swap_file = Path("/sys/fs/cgroup"), "memory.max", "memory.swap.max"
        if "memory" not in v2.read_text().split():
            pytest.skip("cgroup v2 without the memory controller")
    else:
        parent = Path("/sys/fs/cgroup/memory")
        limit_file, swap_file = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
    group = parent / f"handbook-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup here ({group}: {exc})")
    try:
        (group / limit_file).write_text(str(limit))
        if (group / swap_file).exists():  # no swap either: over the limit means the OOM killer
            (group / swap_file).write_text("0" if v2.exists() else str(limit))
        yield group
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        harness.wait_until(lambda: not (group / "cgroup.procs").read_text().strip(),
                           what=f"{group} is empty", timeout=10)
        group.rmdir()


def test_a_worker_over_the_cgroup_limit_is_oom_killed_and_replaced(log_dir: Path) -> None:
    """The server in a 400 MiB memory cgroup; one worker keeps 16 MiB per request: the kernel's
    OOM killer kills that worker (the largest process), not the master. The request it was
    serving gets no answer; Gunicorn logs "Perhaps out of memory?" and starts a new worker."""
    snip = harness.snippet(SERVERS["gunicorn + uvicorn-worker"])
    with memory_cgroup(400 * MIB) as group:
        command = f"echo $$ > {group}/cgroup.procs && exec {harness.command_of(snip)}"
        wrapped = harness.variant(snip, command)  # the page's command, inside the cgroup
        with harness.serving(wrapped, log_dir=log_dir, cwd=APP.folder) as server:
            master = server.main_process().pid
            before = {w.pid for w in server.wait_for_workers(2)}
            with server.client() as client:
                leaker = client.get("/").json()["pid"]
                with pytest.raises(httpx.HTTPError):  # the connection dies with the worker
                    for _ in range(60):  # 960 MiB: far past the limit
                        client.get("/leak/16")
            server.wait_for_log(GUNICORN_KILLED.format(pid=leaker))
            assert server.main_process().pid == master
            harness.wait_until(
                lambda: leaker not in {w.pid for w in server.workers()}
                and len(server.ready_worker_pids() & {w.pid for w in server.workers()}) == 2,
                what="a new worker replaces the killed one", server=server)
            assert before - {leaker} <= {w.pid for w in server.workers()}
            assert server.get("/leak/0").json()["kept_mib"] == 0


# --------------------------------------------------------------------------- RLIMIT_AS


def test_an_address_space_limit_raises_memoryerror_and_the_worker_lives_on(log_dir: Path) -> None:
    """prlimit --as=1GiB: past the limit an allocation fails inside Python, so the request
    that asked for it gets a 500; the worker is not killed, keeps what it already held, and
    serves the next request."""
    with harness.serving("memory/prlimit.sh", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        with server.client() as client:
            statuses, pid = [], client.get("/").json()["pid"]
            for _ in range(30):  # 64 MiB each: 1.9 GiB asked for in all
                statuses.append(client.get("/leak/64").status_code)
                if statuses[-1] == 500:
                    break
        assert statuses[-1] == 500 and set(statuses[:-1]) == {200}, statuses
        kept = 64 * (len(statuses) - 1)
        assert pid in {w.pid for w in server.workers()}, "the worker was not killed"
        harness.wait_until(lambda: answers_from(server, pid) == kept, server=server,
                           what=f"worker {pid} answers on a new connection, keeping {kept} MiB")
        assert "MemoryError" in server.log()
        assert "SIGKILL" not in server.log() and "exited" not in server.log()


def answers_from(server: harness.Server, pid: int) -> int | None:
    """On a new connection: how much the worker ``pid`` keeps, if it is the one that answers."""
    answer = server.get("/leak/0").json()
    return answer["kept_mib"] if answer["pid"] == pid else None


# --------------------------------------------------------------------------- install


def test_requirements_pin_the_verified_versions() -> None:
    """requirements.txt pins exactly the versions the whole suite runs with (uv.lock)."""
    pins = harness.check_reader_env("memory", shows=["memory/requirements.txt"])
    assert set(pins) == {"fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "granian"}


def test_install_command_installs_the_requirements(log_dir: Path) -> None:
    """The quick start's install command, run in this page's folder, installs its requirements
    (Granian included) into a fresh virtual environment, from the package index."""
    installed = harness.install_as_the_reader("quickstart/install.sh", APP.folder, log_dir)
    reader = harness.reader_env("memory")
    for name in ("fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "granian"):
        assert installed.get(name) == reader.version(name), (name, installed)
