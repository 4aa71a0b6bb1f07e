"""Time the site builds an editor waits for: ``python -m tools time-build [--under-load]``.

Measures, behind the load guard (``tools/loadguard.py``), the full strict build (every
language, as the tests and the published site build it) and the one-language loop
(``HANDBOOK_LANGUAGES=<lang>``, what ``mkdocs serve`` rebuilds after a snippet edit). Each build
runs ``--runs`` times (default 3); the median wall time and CPU time (user + system of the
build process) are printed as JSON, with the machine and load block. On a quiet machine the two
are close; on a busy one the CPU time is the better guide to what a quiet machine would take.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import loadguard

ROOT = Path(__file__).resolve().parents[1]


def one_build(languages: str | None, site: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``mkdocs build --strict``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("HANDBOOK_LANGUAGES", None)
    if languages:
        env["HANDBOOK_LANGUAGES"] = languages
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                        "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True,
                       text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"mkdocs build --strict (HANDBOOK_LANGUAGES={languages or ''}): exit code "
                         f"{r.returncode}\n{r.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str]) -> int:
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
        for name, languages in (("full build", None), (f"one language ({lang})", lang)):
            times = [one_build(languages, Path(tmp) / "site") for _ in range(runs)]
            results[name] = {"wall_s": round(statistics.median(t[0] for t in times), 1),
                             "cpu_s": round(statistics.median(t[1] for t in times), 1),
                             "runs": runs}
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "builds": results,
                      **loadguard.after(reading)}, indent=2))
    return 0
