"""Find the worker count where throughput stops growing: one Locust run per worker count.

Tooling, not a snippet: ``python -m tools measure sweep`` runs it behind the load guard
(``tools/measure.py``), from the repository root:

    python -m tools measure sweep                   # 1 to 4 workers, 3 rounds of 10 s
    python -m tools measure sweep --quick --out DIR # 1 and 2 workers, one round of 2 s, to DIR
    python -m tools render sweep                    # measure nothing: rewrite sweep*.md

Each run starts the command of serve.sh with --workers N, on 127.0.0.1 and a free port,
waits until it answers, runs the page's Locust command (``snippets/load_testing/sweep_run.sh``
is one run of it) headless against it on this same machine, and stops the server: SIGTERM to
its process group, SIGKILL if it is still there 30 s later. Rounds go 1, 2, 3, 4 workers, then
4, 3, 2, 1, and so on; each row of the table is the run with the median throughput for its
worker count, so one disturbed run does not decide a row.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

import psutil

from tools import loadguard
from tools._procs import stop_group
from tools.locale_numbers import number, steal  # one number format for every table

HERE = Path(__file__).resolve().parents[1] / "snippets" / "load_testing"  # the page's snippets
COMMAND = "python -m tools measure sweep"  # regenerates sweep.md (and .vi.md, .zh.md)
# serve.sh with the worker count varied, on loopback, and without Gunicorn's control socket
# (a throwaway server needs none, and several in a row would reuse one path)
SERVER = ("gunicorn main:app --worker-class uvicorn_worker.UvicornWorker --workers {workers}"
          " --bind 127.0.0.1:{port} --no-control-socket")
USERS = 20  # simulated users, each sending its next request as soon as the last one returns
SECONDS = 10  # per run (--quick: 2)
WORKERS = (1, 2, 3, 4)  # (--quick: 1 and 2)
ROUNDS = 3  # runs per worker count (--quick: 1)



#: The plan's words: what a full sweep runs, rendered into sweep_plan.md (.vi.md, .zh.md).
PLAN_TEXT = {
    "en": {
        "server": "**The server**: serve.sh with the worker count varied, on loopback and "
                  "without Gunicorn's control socket (a throwaway server needs none, and several "
                  "in a row would reuse one path): `{server}`.",
        "load": "**The load**: Locust with {users} users, each sending its next request as soon "
                "as the last one returns, for {seconds} s per run.",
        "counts": "**Worker counts**: {counts}, in {rounds} rounds that alternate the order; a "
                  "quick run (`--quick`) runs only {quick} workers, once, {quick_seconds} s each.",
    },
    "vi": {
        "server": "**Server**: serve.sh với số worker thay đổi, trên loopback và không có "
                  "control socket của Gunicorn (server dùng một lần thì không cần, và nhiều "
                  "server chạy nối tiếp sẽ dùng lại cùng một đường dẫn): `{server}`.",
        "load": "**Tải**: Locust với {users} user, mỗi user gửi request kế tiếp ngay khi "
                "request trước trả về, mỗi lần chạy {seconds} giây.",
        "counts": "**Số worker**: {counts}, qua {rounds} vòng, mỗi vòng đảo ngược thứ tự của "
                  "vòng trước; bản chạy nhanh (`--quick`) chỉ chạy {quick} worker, mỗi số một "
                  "lần, mỗi lần {quick_seconds} giây.",
    },
    "zh": {
        "server": "**服务器**：serve.sh，只改变工作进程数，监听回环地址，且不开 Gunicorn 的控制"
                  "套接字（一次性的服务器用不到它，而连续启动的几个会复用同一路径）：`{server}`。",
        "load": "**负载**：Locust 模拟 {users} 个用户，每个用户在上一个请求返回后立即发送下一个，"
                "每次运行 {seconds} 秒。",
        "counts": "**工作进程数**：{counts}，共 {rounds} 轮，每轮顺序与上一轮相反；快速运行"
                  "（`--quick`）只测 {quick} 个工作进程，各跑一次，每次 {quick_seconds} 秒。",
    },
}
AND = {"en": " and ", "vi": " và ", "zh": " 和 "}
QUICK_SECONDS = 2
QUICK_WORKERS = WORKERS[:2]


def render_plan(lang: str) -> str:
    """The plan of a full sweep (the settings above), in ``lang``."""
    t = PLAN_TEXT[lang]
    comma = "、" if lang == "zh" else ", "
    server = SERVER.format(workers="N", port=8000)
    return "\n".join([
        "- " + t["server"].format(server=server),
        "- " + t["load"].format(users=USERS, seconds=SECONDS),
        "- " + t["counts"].format(counts=comma.join(map(str, WORKERS)), rounds=ROUNDS,
                                  quick=AND[lang].join(map(str, QUICK_WORKERS)),
                                  quick_seconds=QUICK_SECONDS),
    ]) + "\n"


def plan_outputs() -> dict[str, str]:
    """The plan in every language: file name -> text (rendered from this module alone)."""
    return {f"sweep_plan{'' if lang == 'en' else '.' + lang}.md": render_plan(lang)
            for lang in PLAN_TEXT}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2):
                return
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not answer {url}")
        time.sleep(0.2)


def locust_command(seconds: int, host: str, json_file: str) -> str:
    """One run's Locust command (run in snippets/load_testing/, where locustfile.py is);
    snippets/load_testing/sweep_run.sh is this command for one full-length run."""
    return shlex.join([
        "locust", "-f", "locustfile.py", "--headless", "--users", str(USERS),
        "--spawn-rate", str(USERS), "--run-time", f"{seconds}s", "--host", host,
        "--json-file", json_file, "--only-summary", "--exit-code-on-error", "1",
    ])


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def percentile(histogram: dict[int, int], fraction: float) -> int:
    """The response time (ms, as Locust rounds it) below which `fraction` of requests fall."""
    count, seen = sum(histogram.values()), 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= fraction * count:
            return ms
    return 0


def measure(workers: int, seconds: int, scratch: Path) -> dict[str, float]:
    """One run: start the server with `workers` workers, load it, stop it, summarize."""
    port = free_port()
    scratch.mkdir(parents=True, exist_ok=True)
    log = (scratch / f"server-{workers}.log").open("wb")
    argv = shlex.split(SERVER.format(workers=workers, port=port))
    argv[0] = shutil.which(argv[0]) or str(Path(sys.executable).with_name(argv[0]))
    server = subprocess.Popen(argv, cwd=HERE, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/", server)
        while len(psutil.Process(server.pid).children()) < workers:
            time.sleep(0.1)
        time.sleep(1)  # let the last worker finish starting its app
        group = [psutil.Process(server.pid), *psutil.Process(server.pid).children()]
        command = locust_command(seconds, f"http://127.0.0.1:{port}",
                                 str(scratch / f"run-{workers}"))
        locust = psutil.Popen([sys.executable, "-m", *shlex.split(command)], cwd=HERE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []  # (wall clock, Locust CPU seconds, server CPU seconds), ten a second
        while locust.poll() is None:
            samples.append((time.time(), cpu_seconds([locust]), cpu_seconds(group)))
            time.sleep(0.1)
    finally:
        stop_group(server)
        log.close()
    entries = json.loads((scratch / f"run-{workers}.json").read_text())
    if not entries or not samples:
        raise SystemExit(f"{workers} workers: no request made (Locust exit {locust.returncode})")
    histogram: dict[int, int] = {}
    for entry in entries:
        for ms, n in entry["response_times"].items():
            histogram[int(float(ms))] = histogram.get(int(float(ms)), 0) + n
    requests = sum(e["num_requests"] for e in entries)
    start = min(e["start_time"] for e in entries)
    end = max(e["last_request_timestamp"] for e in entries)
    span = end - start
    first = max([x for x in samples if x[0] <= start] or samples[:1])
    last = min([x for x in samples if x[0] >= end] or samples[-1:])
    return {
        "workers": workers,
        "rps": requests / span,
        "median": percentile(histogram, 0.50),
        "p95": percentile(histogram, 0.95),
        "p99": percentile(histogram, 0.99),
        "failures": sum(e["num_failures"] for e in entries),
        "server_cores": (last[2] - first[2]) / (last[0] - first[0]),
        "locust_cores": (last[1] - first[1]) / (last[0] - first[0]),
        "seconds": span,
        "exit_code": locust.returncode,
    }


#: The table's words in each language of the handbook (sweep.md, sweep.vi.md, sweep.zh.md).
TEXT = {
    "en": {
        "intro": "Measured on {date} by the sweep `{command}` runs: {cpu}, {cores} cores, "
                 "{memory}, {os}, Python {python}; Gunicorn {gunicorn} with uvicorn-worker {uw}, "
                 "Locust {locust} with {users} users on the same machine, {seconds} s per run; "
                 "each row is the median of {rounds} runs. Load average before the runs: {load}.",
        "columns": ["workers", "requests/s", "median (ms)", "p95 (ms)", "p99 (ms)", "failures",
                    "server CPU (cores)", "Locust CPU (cores)", "seconds measured"],
        "workers": ("{k} worker", "{k} workers"),
        "stopped": "Throughput stopped growing at **{n}**: going to {m} changed requests per "
                   "second by {change}.",
        "growing": "Throughput was still growing at {n}: try more.",
        "busy": "The machine was busy (load average {load} on {cores} cores): the server got "
                "only part of its CPU, so these rows show the method, not the app's capacity.",
    },
    "vi": {
        "intro": "Đo ngày {date} bằng phép quét mà `{command}` chạy: {cpu}, {cores} lõi, "
                 "{memory}, {os}, Python {python}; Gunicorn {gunicorn} với uvicorn-worker {uw}, "
                 "Locust {locust} với {users} user chạy trên cùng máy, mỗi lần chạy {seconds} "
                 "giây; mỗi dòng là trung vị của {rounds} lần chạy. Load average trước khi "
                 "chạy: {load}.",
        "columns": ["worker", "request/giây", "trung vị (ms)", "p95 (ms)", "p99 (ms)", "lỗi",
                    "CPU server (lõi)", "CPU Locust (lõi)", "số giây đo được"],
        "workers": ("{k} worker", "{k} worker"),
        "stopped": "Thông lượng ngừng tăng ở **{n}**: lên {m} thì số request mỗi giây thay "
                   "đổi {change}.",
        "growing": "Thông lượng vẫn còn tăng ở {n}: hãy thử nhiều hơn.",
        "busy": "Máy đang bận (load average {load} trên {cores} lõi): server chỉ nhận được một "
                "phần CPU, nên các dòng này minh họa phương pháp, không phải năng lực của ứng "
                "dụng.",
    },
    "zh": {
        "intro": "于 {date} 由 `{command}` 运行的扫描测得：{cpu}，{cores} 核，{memory}，{os}，"
                 "Python {python}；Gunicorn {gunicorn} 配合 uvicorn-worker {uw}，Locust {locust} "
                 "在同一台机器上模拟 {users} 个用户，每次运行 {seconds} 秒；每一行取 {rounds} "
                 "次运行的中位数。运行前的负载均值：{load}。",
        "columns": ["工作进程数", "每秒请求数", "中位数 (ms)", "p95 (ms)", "p99 (ms)", "失败数",
                    "服务器 CPU（核）", "Locust CPU（核）", "实测秒数"],
        "workers": ("{k} 个工作进程", "{k} 个工作进程"),
        "stopped": "吞吐量在 **{n}**时不再增长：增加到 {m}后，每秒请求数变化 {change}。",
        "growing": "到 {n}时吞吐量仍在增长：请再多试几档。",
        "busy": "测量时机器很忙（{cores} 核上的负载均值为 {load}）：服务器只分到一部分 CPU，"
                "所以这几行展示的是方法，而不是应用的实际容量。",
    },
}


def report(data: dict, lang: str = "en") -> str:
    """One language's table, from the data a sweep recorded (sweep.data.json)."""
    words, rows, load = TEXT[lang], data["rows"], data["load"]

    def num(value: float, decimals: int = 0) -> str:
        return number(value, lang, decimals)

    intro = words["intro"].format(command=COMMAND, **data["machine"], **data["versions"],
                                  date=data["date"], users=data["users"],
                                  seconds=data["seconds"], rounds=data["rounds"],
                                  load=num(load, 1)) + steal(data, lang)
    lines = [intro, "", "| " + " | ".join(words["columns"]) + " |",
             "|" + "---:|" * len(words["columns"])]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {num(r['rps'])} | {num(r['median'])} | {num(r['p95'])} "
            f"| {num(r['p99'])} | {r['failures']} | {num(r['server_cores'], 2)} "
            f"| {num(r['locust_cores'], 2)} | {num(r['seconds'], 1)} |"
        )
    lines += ["", conclusion(rows, words)]
    cores = int(data["machine"]["cores"])
    if load > cores:
        lines += ["", words["busy"].format(load=num(load, 1), cores=cores)]
    return "\n".join(lines) + "\n"


def outputs(data: dict) -> dict[str, str]:
    """Every file written from the data: file name -> text."""
    files = {"sweep.data.json": json.dumps(data, indent=2) + "\n"}
    for lang in TEXT:
        files["sweep.md" if lang == "en" else f"sweep.{lang}.md"] = report(data, lang)
    return files


def conclusion(rows: list[dict[str, float]], words: dict) -> str:
    """Where throughput stopped growing: the first count whose next one adds under 10 %."""
    def count(k: int) -> str:
        return words["workers"][k > 1].format(k=k)

    for row, after in zip(rows, rows[1:], strict=False):
        if after["rps"] < 1.10 * row["rps"]:
            change = f"{after['rps'] / row['rps'] - 1:+.0%}"
            return words["stopped"].format(n=count(row["workers"]), m=count(after["workers"]),
                                           change=change)
    return words["growing"].format(n=count(rows[-1]["workers"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 2 workers, one 2 s round")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="where sweep.md goes (default: snippets/load_testing/)")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: rewrite the tables from sweep.data.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render:
        data = json.loads((args.out / "sweep.data.json").read_text())
    else:
        data = sweep(*((QUICK_SECONDS, QUICK_WORKERS, 1) if args.quick
                       else (SECONDS, WORKERS, ROUNDS)))
    files = outputs(data)
    if args.render:  # the plan comes from this module: rendered with the tables
        files.update(plan_outputs())
    for name, text in files.items():
        (args.out / name).write_text(text)
    print(report(data))


def sweep(seconds: int, counts: tuple[int, ...], rounds: int) -> dict:
    """Run every worker count `rounds` times; the data the tables are written from."""
    load = os.getloadavg()[0]
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(rounds):
            for n in counts if r % 2 == 0 else counts[::-1]:
                runs[n].append(measure(n, seconds, Path(scratch) / f"round-{r}"))
    return {
        "date": datetime.date.today().isoformat(), "machine": loadguard.machine(),
        "versions": {"gunicorn": version("gunicorn"), "uw": version("uvicorn-worker"),
                     "locust": version("locust")},
        "users": USERS, "seconds": seconds, "rounds": rounds, "load": load,
        "rows": [sorted(runs[n], key=lambda run: run["rps"])[rounds // 2] for n in counts],
    }


if __name__ == "__main__":
    main()
