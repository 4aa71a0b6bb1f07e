"""docs/scaling.md: workers, threads, pods; what each worker process has for itself.

Memory assertions compare runs of the same app with generous margins; they measure what the
kernel reports (USS, PSS), which does not depend on how busy the CPUs are.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

import containers
import harness
from tools import _memory as measure_memory  # the tables' measuring code (tooling)

SNIPPETS = harness.SNIPPETS / "scaling"
COMMANDS = {"no-preload": "scaling/serve.sh", "preload": "scaling/serve_preload.sh"}
APP = harness.snippet("scaling/app.py")  # what both commands serve



def test_both_commands_serve_the_app() -> None:
    for command in COMMANDS.values():
        assert "app:app" in harness.snippet(command).text
    assert "--preload" in harness.snippet(COMMANDS["preload"]).text
    assert "--preload" not in harness.snippet(COMMANDS["no-preload"]).text
    assert harness.snippet("scaling/cpus.py").path.name in harness.snippet("scaling/cpus.sh").text


def run_measure_command(log_dir: Path) -> dict:
    """`python -m tools measure memory` (under load: the suite shares the machine; its output
    is never committed): its two tables and, per server command, the master's PID, what
    /pools says in each worker, and memory after start and after reading TABLE."""
    raw = log_dir / "measured.json"
    result = subprocess.run(
        [sys.executable, "-m", "tools", "measure", "memory", "--under-load", "--out", str(log_dir)],
        cwd=harness.ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MEASURE_DATA": str(raw), "HANDBOOK_LOG_DIR": str(log_dir)})
    assert result.returncode == 0, (f"python -m tools measure memory: exit code "
                                    f"{result.returncode}\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    data = json.loads(raw.read_text("utf-8"))
    seen = {}
    for name, command in COMMANDS.items():
        server = data[command]
        seen[name] = {
            "master": server["master"], "workers": set(server["workers"]),
            "pools": {int(pid): answer for pid, answer in server["pools"].items()},
            "fresh": server["states"]["after start"],
            "touched": server["states"]["after each worker read TABLE"],
        }
    return {"output": result.stdout, "memory.md": (log_dir / "memory.md").read_text("utf-8"),
            "cpus.md": (log_dir / "cpus.md").read_text("utf-8"), **seen}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of measure_memory.sh per test session, shared by the tests that read it."""
    return harness.once(tmp_path_factory, "scaling-observed", run_measure_command)


# --------------------------------------------------------------------------- state


def test_workers_do_not_share_module_state(log_dir: Path) -> None:
    """Each worker process counts its own hits: no counter sees the total."""
    answers = []
    with harness.serving("scaling/serve.sh", log_dir=log_dir) as server:
        workers = {w.pid for w in server.wait_for_workers(2)}
        limits = httpx.Limits(max_keepalive_connections=0)  # each request, a new connection
        with harness.http_client(base_url=server.url(""), limits=limits, timeout=30) as client:
            for _ in range(300):
                answers.append(client.post("/hit").json())
                per_worker = Counter(a["pid"] for a in answers)
                if len(per_worker) == 2 and min(per_worker.values()) >= 3:
                    break
    per_worker = Counter(a["pid"] for a in answers)
    assert set(per_worker) == workers, "both workers answered"
    last = {a["pid"]: a["hits"] for a in answers}  # each worker's counter, at the end
    assert last == dict(per_worker)  # each counted exactly the requests it served
    assert max(last.values()) < len(answers)  # and neither knows the total


# --------------------------------------------------------------------------- pools


def test_lifespan_pool_is_created_in_each_worker(observed: dict) -> None:
    """With or without --preload, lifespan runs in each worker: one pool per worker process."""
    for name in COMMANDS:
        seen = observed[name]
        pools = seen["pools"]
        assert set(pools) == seen["workers"], name
        for pid, answer in pools.items():
            assert answer["lifespan_pool"]["created_in"] == pid, name
        assert len({a["lifespan_pool"]["id"] for a in pools.values()}) == 2, name


def test_import_time_pool_is_created_in_the_master_with_preload(observed) -> None:
    """A pool made at import time: in each worker without --preload (by luck), but made once,
    in the master, and inherited by every worker with --preload."""
    plain = observed["no-preload"]["pools"]
    assert all(a["import_time_pool"]["created_in"] == pid for pid, a in plain.items())
    assert len({a["import_time_pool"]["id"] for a in plain.values()}) == 2

    preload = observed["preload"]
    pools = preload["pools"]
    assert {a["import_time_pool"]["created_in"] for a in pools.values()} == {preload["master"]}
    assert len({a["import_time_pool"]["id"] for a in pools.values()}) == 1  # one object, copied
    assert all(a["master"] == preload["master"] for a in pools.values())


# --------------------------------------------------------------------------- memory


def per_worker(shot: dict, kind: str) -> float:
    return sum(w[kind] for w in shot["workers"]) / len(shot["workers"])


def total_pss(shot: dict) -> float:
    return shot["master"]["pss"] + sum(w["pss"] for w in shot["workers"])


def test_preload_shares_memory_between_workers(observed: dict[str, dict]) -> None:
    """After start, a preloaded worker holds far less memory of its own (USS)."""
    plain, preload = observed["no-preload"]["fresh"], observed["preload"]["fresh"]
    assert per_worker(preload, "uss") <= 0.5 * per_worker(plain, "uss")
    assert total_pss(preload) <= 0.8 * total_pss(plain)


def test_reading_shared_objects_copies_them(observed: dict[str, dict]) -> None:
    """Reading TABLE once in each worker updates reference counts, so the kernel copies those
    pages: the preloaded workers' own memory grows and the saving is gone."""
    fresh, touched = observed["preload"]["fresh"], observed["preload"]["touched"]
    assert per_worker(touched, "uss") >= per_worker(fresh, "uss") + 15  # MiB: TABLE's pages
    plain = observed["no-preload"]
    assert per_worker(plain["touched"], "uss") <= per_worker(plain["fresh"], "uss") + 5
    assert total_pss(touched) >= 0.85 * total_pss(plain["touched"])


def test_memory_command_writes_both_tables(observed: dict) -> None:
    memory, cpus = observed["memory.md"], observed["cpus.md"]
    assert memory in observed["output"] and cpus in observed["output"]
    for _, how in measure_memory.SERVERS:
        for state in ("after start", "after each worker read TABLE"):
            assert re.search(rf"^\| {re.escape(how)} \| {state} \|( \d+ MiB \|){{5}}$", memory,
                             re.M), (how, state)
    assert "Measured on" in memory and "python -m tools measure memory" in memory
    assert "| `os.cpu_count()` |" in cpus
    # The committed tables have the same rows (their labels: the numbers are this machine's).
    for ref, labels in (("scaling/memory.md", 2), ("scaling/cpus.md", 1)):
        committed = harness.snippet(ref).text.splitlines()
        fresh = observed[Path(ref).name].splitlines()
        assert [ln.split("|")[1:1 + labels] for ln in committed[:-2]] == [
            ln.split("|")[1:1 + labels] for ln in fresh[:-2]]


# --------------------------------------------------------------------------- how many workers


def run_cpus(ref: str, log_dir: Path) -> dict[str, str]:
    out = harness.run(ref, log_dir=log_dir).output
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_cpu_count_ignores_what_the_process_may_use(log_dir: Path) -> None:
    """os.cpu_count() counts the machine's CPUs; an affinity mask (a cpuset) is not seen."""
    plain = run_cpus("scaling/cpus.sh", log_dir)
    pinned = run_cpus("scaling/cpus_one_cpu.sh", log_dir)
    assert plain["os.cpu_count()"] == pinned["os.cpu_count()"] == str(os.cpu_count())
    assert pinned["len(os.sched_getaffinity(0))"] == "1"
    assert plain["len(os.sched_getaffinity(0))"] == str(len(os.sched_getaffinity(0)))
    assert "cgroup CPU quota" in plain


@pytest.mark.timeout(1200)  # on a fresh machine: installs Podman and makes the base image
def test_in_a_container_limited_to_one_cpu_cpu_count_still_counts_every_core() -> None:
    """cpus.py in a container run with --cpus=1 (the stand-in python:3.12-slim-bookworm image):
    the cgroup CPU quota is 1, and os.cpu_count() still reports every core of the machine."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs a machine with more than one core to tell the two apart")
    containers.engine()
    containers.ensure_base_images(containers.uv_version(harness.SNIPPETS / "docker/Dockerfile"))
    script = harness.snippet("scaling/cpus.py").path
    base = containers.Build(containers.PYTHON_IMAGE, "")
    out = base.run("python", "/cpus.py", options=("--cpus=1", f"--volume={script}:/cpus.py:ro"))
    seen = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert seen["cgroup CPU quota"] == "1", out.stdout
    assert seen["os.cpu_count()"] == str(os.cpu_count()), out.stdout


def default_workers(web_concurrency: str | None) -> str:
    """Gunicorn's and Uvicorn's worker count when none is given (a fresh interpreter, since
    Gunicorn reads WEB_CONCURRENCY when its config module is imported)."""
    env = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    if web_concurrency:
        env["WEB_CONCURRENCY"] = web_concurrency
    code = ("import gunicorn.config, uvicorn; "
            "print(gunicorn.config.Config().workers, uvicorn.Config('app:app').workers)")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def test_servers_start_one_worker_unless_told() -> None:
    """Neither Gunicorn nor Uvicorn sizes its workers from the CPU count: both start one,
    or $WEB_CONCURRENCY when it is set."""
    assert default_workers(None) == "1 1"
    assert default_workers("3") == "3 3"


def test_committed_tables_are_rendered_from_their_data() -> None:
    """memory.md, cpus.md and their Vietnamese and Chinese versions are what
    `python -m tools render memory` writes from the committed data."""
    data = json.loads(harness.snippet("scaling/measured.data.json").text)
    files = measure_memory.outputs(data)
    assert {"memory.vi.md", "memory.zh.md", "cpus.vi.md", "cpus.zh.md"} <= set(files)
    for ref in ("scaling/memory.vi.md", "scaling/memory.zh.md", "scaling/cpus.vi.md",
                "scaling/cpus.zh.md", "scaling/memory.md", "scaling/cpus.md"):
        assert harness.snippet(ref).text == files[Path(ref).name], (
            f"snippets/{ref}: not what tools/_memory.py renders from measured.data.json; run "
            "`python -m tools render memory`")
