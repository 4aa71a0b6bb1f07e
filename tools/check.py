"""The editors' fast loop: page rules, snippet lint and the strict site build, no servers.

``python -m tools check`` runs, in this order, and stops at the first failure:

1. ``pytest tests/test_docs.py tests/test_glossary.py tests/test_tools.py``: every page and
   snippet rule (fences hold only includes, includes resolve, three languages in step and
   stamped, glossary terms, Chinese line breaks, ruff and ``bash -n`` on the snippets, ruff on
   ``tools/`` and ``snippets/``), and the load guard's own tests. None of them starts a server.
2. ``mkdocs build --strict`` into a temporary folder (every language).

The glossary test that reads the built site (``test_built_glossary_has_every_term_side_by_side``)
is left to the full suite: it would build the site a second time. ``--fast`` also skips running
the Python snippets (it still lints them). Extra arguments after ``--`` go to pytest (for
example ``-- -k benchmarks``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_docs.py", "tests/test_glossary.py", "tests/test_tools.py"]


def step(name: str, argv: list[str], env: dict | None = None) -> int:
    start = time.monotonic()
    rc = subprocess.run(argv, cwd=ROOT, env=env).returncode
    print(f"tools check: {name}: {'ok' if rc == 0 else f'FAILED (exit code {rc})'} "
          f"in {time.monotonic() - start:.1f} s", flush=True)
    return rc


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    skip = ["test_built_glossary_has_every_term_side_by_side"]
    if "--fast" in argv:
        skip.append("test_python_snippet_lints_and_runs")
    selection = " and ".join(f"not {name}" for name in skip)
    if "-k" in extra:  # pytest keeps only the last -k: fold the caller's into ours
        i = extra.index("-k")
        selection = f"({extra[i + 1]}) and {selection}"
        del extra[i : i + 2]
    extra += ["-k", selection]
    workers = str(min(os.cpu_count() or 1, 4))
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    started = time.monotonic()
    rc = step("page and snippet rules", [sys.executable, "-m", "pytest", *TESTS, "-q", "-n",
                                         workers, *extra], env)
    if rc:
        return rc
    with tempfile.TemporaryDirectory(prefix="tools-check-site-") as site:
        # No -q: it raises MkDocs' log level to ERROR, so --strict never counts a warning and a
        # broken link would pass.
        rc = step("mkdocs build --strict", [sys.executable, "-m", "mkdocs", "build", "--strict",
                                            "--site-dir", site], env)
    print(f"tools check: {'passed' if rc == 0 else 'failed'} in {time.monotonic() - started:.1f} s")
    return rc
