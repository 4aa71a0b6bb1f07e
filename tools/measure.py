"""Measure a page's numbers behind the load guard: ``python -m tools measure TARGET``.

TARGET is one of ``benchmarks`` (wrk against every server configuration), ``concurrency`` (the
concurrency page's table), ``memory`` (the scaling page's memory and CPU-count tables) or
``sweep`` (the load-testing page's Locust sweep); the measuring code of each is a private
module of this package (``tools/_bench.py``, ``_concurrency.py``, ``_memory.py``, ``_sweep.py``).
Other arguments go to that module (``--quick`` for benchmarks and sweep). ``--out DIR`` writes
there instead of next to the page's snippets.

Before measuring, the load guard (``tools/loadguard.py``) records the machine and refuses a
busy one (exit code 3) unless ``--under-load`` is given; after measuring, its block (machine,
load average before and after, CPU steal over the run, ``under_load``) is merged into the data
file and the tables are rendered again from it, so the tables and the data agree.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools import loadguard

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "snippets"


@dataclass(frozen=True)
class Target:
    folder: str  # under snippets/
    script: str  # the measuring module of tools/ ("tools._memory")
    data: str  # the data file it writes, in the output folder
    reader_env: bool  # run with the page's reader environment (else the tests' environment)

    def command(self, python: str, out: Path, extra: list[str]) -> tuple[list[str], dict]:
        """The module's command line and environment, writing into ``out``."""
        env = dict(os.environ)
        args = [python, "-m", self.script, *extra]
        if self.script == "tools._concurrency":
            env["MEASURE_OUTPUT"] = str(out / "measured.md")
        elif self.script == "tools._memory":
            env["MEASURE_OUTPUT_DIR"] = str(out)
        else:
            args += ["--out", str(out)]
        return args, env


TARGETS = {
    "benchmarks": Target("benchmarks", "tools._bench", "results.json", reader_env=True),
    "concurrency": Target("concurrency", "tools._concurrency", "measured.data.json",
                          reader_env=False),
    "memory": Target("scaling", "tools._memory", "measured.data.json", reader_env=False),
    "sweep": Target("load_testing", "tools._sweep", "sweep.data.json", reader_env=False),
}


def python_for(target: Target) -> str:
    if not target.reader_env:
        return sys.executable
    sys.path.insert(0, str(ROOT / "tests"))
    import harness  # the page's reader environment, built from its requirements

    return str(harness.reader_env(target.folder).python)


def run_script(target: Target, out: Path, extra: list[str]) -> int:
    args, env = target.command(python_for(target), out, extra)
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def render(target: Target, out: Path) -> int:
    """Rewrite the tables (every language) from the data file in ``out``."""
    return run_script(target, out, ["--render"])


def parse(argv: list[str]) -> tuple[Target, bool, Path | None, list[str]]:
    if not argv or argv[0] not in TARGETS:
        raise SystemExit(f"usage: python -m tools measure {{{'|'.join(TARGETS)}}} "
                         f"[{loadguard.UNDER_LOAD_FLAG}] [--out DIR] [--quick]")
    target, rest = TARGETS[argv[0]], argv[1:]
    under_load = loadguard.UNDER_LOAD_FLAG in rest
    rest = [a for a in rest if a != loadguard.UNDER_LOAD_FLAG]
    out = None
    if "--out" in rest:
        i = rest.index("--out")
        out = Path(rest[i + 1]).resolve()
        del rest[i : i + 2]
    return target, under_load, out, rest


def describe(target_name: str) -> str:
    """What ``measure TARGET --help`` prints: the usage and the measuring module's docstring
    (the module is imported, not run: asking for help never measures or meets the guard)."""
    module = importlib.import_module(TARGETS[target_name].script)
    return (f"usage: python -m tools measure {target_name} [{loadguard.UNDER_LOAD_FLAG}] "
            f"[--out DIR] [--quick]\n\n{(module.__doc__ or '').strip()}")


def main(argv: list[str]) -> int:
    target, under_load, out, rest = parse(argv)
    if {"-h", "--help"} & set(rest):
        print(describe(argv[0]))
        return 0
    if out is None:  # a quick run never overwrites the page's results
        quick = "--quick" in rest
        out = Path(tempfile.mkdtemp(prefix=f"measure-{target.folder}-")) if quick \
            else SNIPPETS / target.folder
    out.mkdir(parents=True, exist_ok=True)
    command = f"python -m tools measure {argv[0]}"
    try:
        reading = loadguard.before(under_load, command=command)
    except loadguard.Busy as e:
        print(e, file=sys.stderr)
        return 3
    rc = run_script(target, out, rest)
    if rc:
        print(f"{command}: {target.folder}/{target.script} exited with {rc}", file=sys.stderr)
        return rc
    data_file = out / target.data
    data = json.loads(data_file.read_text("utf-8"))
    data.update(loadguard.after(reading))
    if "load" in data:  # the sweep's own name for the load before the run
        data["load"] = data["load_before"]
    data_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    rc = render(target, out)
    print(f"{command}: wrote {out} (load before {reading.loadavg[0]:.2f}, "
          f"steal {data['steal_percent']}%{', UNDER LOAD' if under_load else ''})")
    return rc
