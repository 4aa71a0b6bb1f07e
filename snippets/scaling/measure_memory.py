"""Measure each worker's memory with and without --preload, and write memory.md and cpus.md.

Run it from this folder; it starts both servers the page shows, measures them, stops them:

    python measure_memory.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
MIB = 2**20

#: (server command, how it is started)
SERVERS = [
    ("scaling/serve.sh", "without `--preload`"),
    ("scaling/serve_preload.sh", "with `--preload`"),
]


def memory(proc: psutil.Process) -> dict[str, float]:
    """Resident (RSS), proportional (PSS) and unique (USS) memory of one process, in MiB.

    USS is what the process alone holds; PSS adds its share of pages it shares with others."""
    info = proc.memory_full_info()
    return {"rss": info.rss / MIB, "pss": info.pss / MIB, "uss": info.uss / MIB}


def hit_every_worker(base_url: str, path: str, workers: int, attempts: int = 200) -> dict:
    """GET `path` on new connections until `workers` different worker PIDs have answered;
    return each worker's answer."""
    answers: dict[int, dict] = {}
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection, a new accept()
    with httpx.Client(base_url=base_url, limits=limits, timeout=60) as client:
        for _ in range(attempts):
            answer = client.get(path).json()
            answers[answer["pid"]] = answer
            if len(answers) == workers:
                return answers
    raise RuntimeError(f"only workers {set(answers)} answered {path} in {attempts} requests")


def snapshot(master: psutil.Process, workers: list[psutil.Process]) -> dict[str, object]:
    time.sleep(0.5)  # let freshly written pages settle in the counters
    return {"master": memory(master), "workers": [memory(w) for w in workers]}


def measure_server(harness, command: str, log_dir: Path) -> dict[str, object]:
    """Memory after start, then after every worker has read the shared table once (and, for
    the record, which process created each worker's pools)."""
    with harness.serving(command, log_dir=log_dir) as server:
        workers = server.wait_for_workers(2)
        master = server.main_process()
        fresh = snapshot(master, workers)
        pools = hit_every_worker(server.url(""), "/pools", len(workers))
        hit_every_worker(server.url(""), "/table/sum", len(workers))
        touched = snapshot(master, workers)
    return {
        "master": master.pid, "workers": [w.pid for w in workers], "pools": pools,
        "states": {"after start": fresh, "after each worker read TABLE": touched},
    }


def row(how: str, state: str, shot: dict) -> str:
    workers = shot["workers"]
    uss = statistics.mean(w["uss"] for w in workers)
    pss = statistics.mean(w["pss"] for w in workers)
    rss = statistics.mean(w["rss"] for w in workers)
    total = shot["master"]["pss"] + sum(w["pss"] for w in workers)
    return (
        f"| {how} | {state} | {rss:.0f} MiB | {pss:.0f} MiB | {uss:.0f} MiB | "
        f"{shot['master']['uss']:.0f} MiB | {total:.0f} MiB |"
    )


def cpu_report(*prefix: str) -> dict[str, str]:
    out = subprocess.run([*prefix, sys.executable, "cpus.py"], cwd=HERE, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def machine(harness, command: str) -> str:
    m = harness.machine_description()
    versions = ", ".join(f"{n} {version(n)}" for n in ("fastapi", "gunicorn", "uvicorn-worker"))
    return (
        f"Measured on {m['cpu']} ({m['cores']} cores, {m['memory']}), {m['os']}, "
        f"Python {m['python']}; {versions}; {datetime.now(UTC):%Y-%m-%d}. "
        f"Regenerate with `{command}` in `snippets/scaling/`."
    )


def main() -> None:
    # The handbook's test harness starts and stops the servers exactly as the tests do.
    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    import harness

    out_dir = Path(os.environ.get("MEASURE_OUTPUT_DIR", HERE))
    log_dir = Path(os.environ.get("HANDBOOK_LOG_DIR", "/tmp/handbook-logs")) / "measure-memory"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows, data = [], {}
    for command, how in SERVERS:
        data[command] = measure_server(harness, command, log_dir)
        for state, shot in data[command]["states"].items():
            rows.append(row(how, state, shot))
    (out_dir / "memory.md").write_text("\n".join([
        "| Gunicorn started | when | RSS per worker | PSS per worker | USS per worker "
        "| USS of the master | PSS of all processes |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        machine(harness, "python measure_memory.py"),
        "",
    ]), "utf-8")

    plain, pinned = cpu_report(), cpu_report("taskset", "-c", "0")
    (out_dir / "cpus.md").write_text("\n".join([
        "| what the process sees | `python cpus.py` | `taskset -c 0 python cpus.py` |",
        "|---|---|---|",
        *(f"| {f'`{name}`' if '(' in name else name} | {plain[name]} | {pinned[name]} |"
          for name in plain),
        "",
        machine(harness, "python measure_memory.py"),
        "",
    ]), "utf-8")
    for name in ("memory.md", "cpus.md"):
        print((out_dir / name).read_text("utf-8"))
    if os.environ.get("MEASURE_DATA"):  # the raw numbers, for the test suite's assertions
        Path(os.environ["MEASURE_DATA"]).write_text(json.dumps(data))


if __name__ == "__main__":
    main()
