"""Time the site builds an editor waits for: ``python -m tools time-build [--under-load]``.

Measures, behind the load guard (``tools/loadguard.py``):

* the full strict build (every language, as the tests and the published site build it);
* the one-language build (``HANDBOOK_LANGUAGES=<lang> mkdocs build --strict``, a new process:
  imports, configuration and jieba's dictionary if Chinese is built, then the pages);
* the serve rebuild: ``HANDBOOK_LANGUAGES=<lang> mkdocs serve`` on a copy of the sources, a
  line appended to a snippet, and the time until the server logs "Documentation built" (what an
  editor waits for after a save; the server process keeps its imports and caches).

Each runs ``--runs`` times (default 3; ``--lang vi`` by default); the median wall time and CPU
time (user + system of the build or server process over that build) are printed as JSON, with
the machine and load block. On a quiet machine the two are close; on a busy one the CPU time is
the better guide to what a quiet machine would take.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import loadguard
from tools._procs import stop_group

ROOT = Path(__file__).resolve().parents[1]


def one_build(languages: str | None, site: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``mkdocs build --strict``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("HANDBOOK_LANGUAGES", None)
    if languages:
        env["HANDBOOK_LANGUAGES"] = languages
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    # No -q: it would hide the warnings --strict fails on (MkDocs counts only what it logs).
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                        "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"mkdocs build --strict (HANDBOOK_LANGUAGES={languages or ''}): exit code "
                         f"{r.returncode}\n{r.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


#: What the serve measurement copies (the build reads nothing else), and the snippet it edits:
#: one the quick start includes, so every language's pages include it.
SOURCES = ("docs", "snippets", "overrides", "mkdocs.yml")
EDITED = "snippets/quickstart/gunicorn_uvicorn_worker.sh"
BUILT = re.compile(r"Documentation built in ([\d.]+) seconds")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_rebuilds(languages: str, runs: int, tmp: Path,
                   timeout: float = 600) -> list[tuple[float, float]]:
    """Wall and CPU seconds of ``runs`` rebuilds of ``mkdocs serve`` after a snippet edit."""
    copy = tmp / "sources"
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, copy / name)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HANDBOOK_LANGUAGES": languages}
    log_path = tmp / "serve.log"
    command = [sys.executable, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{_free_port()}"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=copy, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def wait_for(pattern: re.Pattern, count: int) -> None:
        deadline = time.monotonic() + timeout
        while len(pattern.findall(log_path.read_text("utf-8"))) < count:
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exit code {proc.poll()}" if proc.poll() is not None else "timed out"
                tail = "\n".join(log_path.read_text("utf-8").splitlines()[-30:])
                raise SystemExit(f"{' '.join(command)} (HANDBOOK_LANGUAGES={languages}, in "
                                 f"{copy}): {state} waiting for {pattern.pattern!r}\n{tail}")
            time.sleep(0.02)

    times = []
    try:
        wait_for(re.compile("Serving on"), 1)
        snippet = copy / EDITED
        original = snippet.read_text("utf-8")
        for i in range(1, runs + 1):
            cpu, start = _cpu_seconds(proc.pid), time.monotonic()
            snippet.write_text(f"{original}# edit {i}\n", "utf-8")
            wait_for(BUILT, i + 1)  # the first one is the initial build
            times.append((time.monotonic() - start, _cpu_seconds(proc.pid) - cpu))
    finally:
        stop_group(proc)
    return times


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):  # asking for help never measures
        print(__doc__)
        return 0
    under_load = loadguard.UNDER_LOAD_FLAG in argv
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    lang = argv[argv.index("--lang") + 1] if "--lang" in argv else "vi"
    try:
        reading = loadguard.before(under_load, command="python -m tools time-build")
    except loadguard.Busy as e:
        print(e, file=sys.stderr)
        return 3
    results = {}
    with tempfile.TemporaryDirectory(prefix="time-build-") as tmp:
        measured = {}
        for name, languages in (("full build", None), (f"one language ({lang})", lang)):
            measured[name] = [one_build(languages, Path(tmp) / "site") for _ in range(runs)]
        measured[f"serve rebuild ({lang}) after a snippet edit"] = serve_rebuilds(
            lang, runs, Path(tmp))
        for name, times in measured.items():
            results[name] = {"wall_s": round(statistics.median(t[0] for t in times), 1),
                             "cpu_s": round(statistics.median(t[1] for t in times), 1),
                             "runs": runs}
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "builds": results,
                      **loadguard.after(reading)}, indent=2))
    return 0
