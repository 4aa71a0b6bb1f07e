"""Shared fixtures, and the guarantee that no server outlives the test session."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import harness  # noqa: E402

os.environ.setdefault("RUFF_OUTPUT_FORMAT", "concise")  # file:line in pytest-examples' ruff errors
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")


#: How many test processes ``-n auto`` starts per core. Most tests spend their time waiting on
#: servers (graceful timeouts, slow requests, reloads) rather than computing, so one process per
#: core leaves the cores half idle. ``HANDBOOK_TEST_PROCESSES`` sets the number outright.
PROCESSES_PER_CORE = 2


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    if os.environ.get("HANDBOOK_TEST_PROCESSES"):
        return int(os.environ["HANDBOOK_TEST_PROCESSES"])
    return PROCESSES_PER_CORE * len(os.sched_getaffinity(0))


def pytest_configure(config: pytest.Config) -> None:
    # The controller picks one id per run; xdist workers inherit it through the environment.
    if not hasattr(config, "workerinput"):
        os.environ[harness.RUN_ID_VAR] = uuid.uuid4().hex


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """Where a test's server and command logs go (kept by pytest for the last runs)."""
    return tmp_path


def _strays(run_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(harness.SERVER_MARK_VAR) == run_id:
                found.append(proc)
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    harness.kill_all_groups()
    if hasattr(session.config, "workerinput"):
        return
    if "containers" in sys.modules or (harness.ROOT / "tests/containers.py").exists():
        import containers  # images and containers the Docker and Kubernetes tests made

        left = containers.remove_run(os.environ.get(harness.RUN_ID_VAR, ""))
        if left:
            session.config.pluginmanager.get_plugin("terminalreporter").write_line(
                "ERROR: images or containers made by the tests could not be removed: "
                + "; ".join(left), red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    strays = _strays(os.environ.get(harness.RUN_ID_VAR, ""))
    if strays:
        described = [f"{p.pid} {' '.join(p.cmdline())}" for p in strays if p.is_running()]
        for proc in strays:
            with contextlib.suppress(psutil.Error):
                os.killpg(os.getpgid(proc.pid), 9)
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            "ERROR: processes started by the tests were still running and were killed: "
            + "; ".join(described),
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per test run with ``mkdocs build --strict``.

    Once per run (``harness.once``): the first test process builds it, the others reuse it
    (or its failure).
    A build warning (broken link, missing page or translation, missing snippet) fails here
    with MkDocs' own message.
    """
    import subprocess

    def build(folder: Path) -> str:
        dest = folder / "site"
        cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(dest)]
        r = subprocess.run(cmd, cwd=harness.ROOT, capture_output=True, text=True,
                           timeout=300, env=harness.base_env())
        problems = [ln for ln in r.stderr.splitlines() if ln.startswith(("WARNING", "ERROR"))]
        if r.returncode != 0 or problems:
            tail = "\n".join(r.stderr.splitlines()[-30:])
            return (f"mkdocs.yml: `mkdocs build --strict` failed (exit code {r.returncode})\n"
                    + "\n".join(problems) + f"\n--- last lines of its output ---\n{tail}")
        return str(dest)

    built = harness.once(tmp_path_factory, "site", build)
    if not Path(built).is_dir():
        pytest.fail(built, pytrace=False)
    return Path(built)
