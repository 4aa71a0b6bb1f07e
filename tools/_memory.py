"""Measure each worker's memory with and without --preload, and write memory.md and cpus.md.

Tooling, not a snippet: ``python -m tools measure memory`` runs it behind the load guard
(``tools/measure.py``). It starts both servers the scaling page shows, through the test
harness, measures them and stops them.
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

from tools import loadguard
from tools.locale_numbers import number, steal  # one number format for every table

ROOT = Path(__file__).resolve().parents[1]

HERE = ROOT / "snippets" / "scaling"  # the page's snippets: cpus.py, serve*.sh
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


def summary(shot: dict) -> dict[str, float]:
    """What the memory table shows of one snapshot, in MiB (means over the workers)."""
    workers = shot["workers"]
    return {
        "rss": statistics.mean(w["rss"] for w in workers),
        "pss": statistics.mean(w["pss"] for w in workers),
        "uss": statistics.mean(w["uss"] for w in workers),
        "master_uss": shot["master"]["uss"],
        "total_pss": shot["master"]["pss"] + sum(w["pss"] for w in workers),
    }


def cpu_report(*prefix: str) -> dict[str, str]:
    out = subprocess.run([*prefix, sys.executable, "cpus.py"], cwd=HERE, capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


# --------------------------------------------------------------------------- the words

STATES = ("after start", "after each worker read TABLE")
#: The tables' words in each language of the handbook (memory.md, cpus.md and their .vi, .zh).
TEXT = {
    "en": {
        "memory_columns": ["Gunicorn started", "when", "RSS per worker", "PSS per worker",
                           "USS per worker", "USS of the master", "PSS of all processes"],
        "servers": [how for _, how in SERVERS],
        "states": list(STATES),
        "cpus_columns": ["what the process sees", "`python cpus.py`",
                         "`taskset -c 0 python cpus.py`"],
        "cpus_rows": {"cgroup CPU quota": "cgroup CPU quota"},
        "values": {},
        "measured": "Measured on {cpu} ({cores} cores, {memory}), {os}, Python {python}; "
                    "{versions}; {date}; load average {load} before. Regenerate with "
                    "`{command}`.",
    },
    "vi": {
        "memory_columns": ["Gunicorn khởi động", "thời điểm", "RSS mỗi worker", "PSS mỗi worker",
                           "USS mỗi worker", "USS của tiến trình master",
                           "PSS của mọi tiến trình"],
        "servers": ["không có `--preload`", "có `--preload`"],
        "states": ["sau khi khởi động", "sau khi mỗi worker đọc TABLE"],
        "cpus_columns": ["tiến trình thấy gì", "`python cpus.py`",
                         "`taskset -c 0 python cpus.py`"],
        "cpus_rows": {"cgroup CPU quota": "quota CPU của cgroup"},
        "values": {"none": "không có", "needs 3.13": "cần Python 3.13"},
        "measured": "Đo trên {cpu} ({cores} lõi, {memory}), {os}, Python {python}; {versions}; "
                    "ngày {date}; load average {load} trước khi đo. Sinh lại bằng "
                    "`{command}`.",
    },
    "zh": {
        "memory_columns": ["Gunicorn 启动方式", "时间点", "每个工作进程的 RSS",
                           "每个工作进程的 PSS", "每个工作进程的 USS", "主进程的 USS",
                           "所有进程的 PSS 之和"],
        "servers": ["不加 `--preload`", "加 `--preload`"],
        "states": ["启动后", "每个工作进程读过一次 TABLE 后"],
        "cpus_columns": ["进程看到的值", "`python cpus.py`", "`taskset -c 0 python cpus.py`"],
        "cpus_rows": {"cgroup CPU quota": "cgroup 的 CPU 配额"},
        "values": {"none": "无", "needs 3.13": "需要 Python 3.13"},
        "measured": "测量环境：{cpu}（{cores} 核，{memory}），{os}，Python {python}；{versions}；"
                    "{date}；1 分钟平均负载：测量前 {load}。运行 `{command}` 可重新生成。",
    },
}
LANGS = tuple(TEXT)
COMMAND = "python -m tools measure memory"


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render(data: dict, lang: str) -> dict[str, str]:
    """One language's memory and CPU tables, from measured.data.json."""
    t = TEXT[lang]
    load = data.get("load_before")
    measured = t["measured"].format(**data["machine"], versions=data["versions"],
                                    date=data["date"], command=COMMAND,
                                    load="?" if load is None else number(load, lang, 1))
    measured += steal(data, lang)

    def mib(value: float) -> str:
        return f"{number(value, lang)} MiB"

    memory = [row(t["memory_columns"]), "|---" * len(t["memory_columns"]) + "|"]
    for (command, _), how in zip(SERVERS, t["servers"], strict=True):
        for state, when in zip(STATES, t["states"], strict=True):
            m = data["memory"][command][state]
            memory.append(row([how, when, *map(mib, (m["rss"], m["pss"], m["uss"],
                                                     m["master_uss"], m["total_pss"]))]))
    cpus = [row(t["cpus_columns"]), "|---" * len(t["cpus_columns"]) + "|"]
    plain, pinned = data["cpus"]["plain"], data["cpus"]["pinned"]
    for name in plain:
        label = f"`{name}`" if "(" in name else t["cpus_rows"].get(name, name)
        cpus.append(row([label, *(t["values"].get(str(v), str(v)) for v in (plain[name],
                                                                         pinned[name]))]))
    return {"memory": "\n".join([*memory, "", measured, ""]),
            "cpus": "\n".join([*cpus, "", measured, ""])}


def outputs(data: dict) -> dict[str, str]:
    """Every file written from the data: file name -> text."""
    files = {"measured.data.json": json.dumps(data, indent=2, ensure_ascii=False) + "\n"}
    for lang in LANGS:
        suffix = "" if lang == "en" else f".{lang}"
        for table, text in render(data, lang).items():
            files[f"{table}{suffix}.md"] = text
    return files


def measure(harness, log_dir: Path) -> tuple[dict, dict]:
    """Both servers' memory and what cpus.py sees: the tables' data, and the raw runs."""
    raw = {command: measure_server(harness, command, log_dir) for command, _ in SERVERS}
    m = loadguard.machine()
    data = {
        "memory": {command: {state: summary(shot) for state, shot in server["states"].items()}
                   for command, server in raw.items()},
        "cpus": {"plain": cpu_report(), "pinned": cpu_report("taskset", "-c", "0")},
        "machine": {k: m[k] for k in ("cpu", "cores", "memory", "os", "python")},
        "versions": ", ".join(f"{n} {version(n)}"
                              for n in ("fastapi", "gunicorn", "uvicorn-worker")),
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
    }
    return data, raw


def main() -> None:
    out_dir = Path(os.environ.get("MEASURE_OUTPUT_DIR", HERE))
    if "--render" in sys.argv[1:]:  # measure nothing: rewrite the tables from the data
        data = json.loads((out_dir / "measured.data.json").read_text("utf-8"))
    else:
        # The handbook's test harness starts and stops the servers exactly as the tests do.
        sys.path.insert(0, str(ROOT / "tests"))
        import harness

        log_dir = Path(os.environ.get("HANDBOOK_LOG_DIR", "/tmp/handbook-logs")) / "measure-memory"
        log_dir.mkdir(parents=True, exist_ok=True)
        data, raw = measure(harness, log_dir)
        if os.environ.get("MEASURE_DATA"):  # the raw numbers, for the test suite's assertions
            Path(os.environ["MEASURE_DATA"]).write_text(json.dumps(raw))
    for name, text in outputs(data).items():
        (out_dir / name).write_text(text, "utf-8")
    for name in ("memory.md", "cpus.md"):
        print((out_dir / name).read_text("utf-8"))


if __name__ == "__main__":
    main()
