"""docs/quickstart.md: one app, served with several worker processes three ways."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import harness

APP = harness.snippet("quickstart/main.py")  # every command below serves main:app from its folder
SERVERS = {
    "uvicorn --workers": "quickstart/uvicorn_workers.sh",
    "gunicorn + uvicorn-worker": "quickstart/gunicorn_uvicorn_worker.sh",
    "gunicorn asgi worker": "quickstart/gunicorn_asgi_worker.sh",
    "fastapi run": "quickstart/fastapi_run.sh",
}
#: `fastapi run` cannot raise Uvicorn's 5 s worker health check, and its workers first
#: re-import the FastAPI CLI: on a test machine shared by parallel runs that took over 5 s and
#: the workers were killed in a loop, so its server runs at a higher CPU priority here.
NICE = {"quickstart/fastapi_run.sh": -20}
#: What the banner shows and the suite itself runs with (pyproject.toml's dependencies).
VERIFIED = {"fastapi", "gunicorn", "uvicorn", "uvicorn-worker"}


@pytest.mark.parametrize("command", SERVERS.values(), ids=SERVERS.keys())
def test_server_runs_two_workers_and_answers(command: str, log_dir: Path) -> None:
    """Each quick-start command starts a master with two worker processes that answer."""
    with harness.serving(command, log_dir=log_dir, cwd=APP.folder,
                         nice=NICE.get(command)) as server:
        workers = server.wait_for_workers(2)
        result = harness.run("quickstart/check.sh", server=server)
        body = result.output.strip()
        assert re.fullmatch(r'\{"message":"Hello from FastAPI","pid":\d+\}', body), body
        pid = int(re.search(r'"pid":(\d+)', body)[1])
        assert pid in {w.pid for w in workers}, "the answer came from one of the workers"


@pytest.mark.parametrize("command", SERVERS.values(), ids=SERVERS.keys())
def test_parent_replaces_a_worker_that_dies(command: str, log_dir: Path) -> None:
    """Kill one worker with SIGKILL: the parent starts a new one and keeps serving."""
    with harness.serving(command, log_dir=log_dir, nice=NICE.get(command)) as server:
        before = {w.pid for w in server.wait_for_workers(2)}
        victim = min(before)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            now = {w.pid for w in server.workers()}
            return victim not in now and len(now - before) == 1

        harness.wait_until(replaced, what=f"a new worker replaces {victim}", timeout=30,
                           server=server)
        server.wait_for_workers(2)
        assert server.get("/").status_code == 200


def test_requirements_pin_the_verified_versions() -> None:
    """requirements.txt pins exactly the versions the whole suite runs with (uv.lock), plus the
    FastAPI CLI for `fastapi run`; the environment built from it alone holds those versions."""
    harness.only_on_the_pinned_set("it checks the pinned requirements file against uv.lock")
    pins = dict(
        re.match(r"([\w-]+)(?:\[[\w,]+\])?==(\S+)", line).groups()
        for line in harness.snippet("quickstart/requirements.txt").text.splitlines()
    )
    assert set(pins) == VERIFIED | {"fastapi-cli"}
    assert {name: pins[name] for name in VERIFIED} == {name: version(name) for name in VERIFIED}
    reader = harness.reader_env("quickstart")
    assert pins == {name: reader.version(name) for name in pins}


def test_install_command_installs_the_requirements(log_dir: Path) -> None:
    """The install command works in a fresh virtual environment (pip, from the package index)."""
    harness.only_on_the_pinned_set("it installs the pinned requirements file with pip")
    venv = log_dir / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        check=True, timeout=120,
    )
    harness.run(
        "quickstart/install.sh",
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(venv),
             "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=240,
        log_dir=log_dir,
    )
    freeze = subprocess.run([venv / "bin" / "python", "-m", "pip", "freeze"], capture_output=True,
                            text=True, check=True, timeout=60).stdout
    pins = harness.snippet("quickstart/requirements.txt").text.split()
    for name in pins:
        assert re.sub(r"\[\w+\]", "", name) in freeze.replace("_", "-"), name
