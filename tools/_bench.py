"""Measure each server configuration on each case (endpoint of main.py, connections) with wrk.

Tooling, not a snippet: ``python -m tools measure benchmarks`` runs it behind the load guard
(``tools/measure.py``), in the benchmarks page's reader environment (the versions measured are
the page's pins), from the repository root:

    python -m tools measure benchmarks                   # the full run: a few minutes
    python -m tools measure benchmarks --quick --out DIR # 2 s per measurement, written to DIR
    python -m tools render benchmarks                    # measure nothing: rewrite results.*

Each configuration is the command in its ``snippets/benchmarks/*.sh`` file, run as shown except
that it listens on 127.0.0.1 and a free port instead of 0.0.0.0:8000. Every server runs in its
own process group and is stopped (SIGTERM, then SIGKILL for the whole group) before the next
one starts. Each measurement is the page's wrk command (``snippets/benchmarks/wrk.sh`` shows
one) with the case's connections and path.
"""

import argparse
import contextlib
import ctypes
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tools import loadguard
from tools.locale_numbers import number, steal  # the one number format of every table

HERE = Path(__file__).resolve().parents[1] / "snippets" / "benchmarks"  # the page's snippets
COMMAND = "python -m tools measure benchmarks"  # regenerates every results file


@dataclass(frozen=True)
class Config:
    key: str
    label: str  # "×2" means two worker processes
    script: str  # the command, in a file next to this one
    workers: int


CONFIGS = (
    Config("uvicorn-1", "uvicorn ×1", "uvicorn_1.sh", 1),
    Config("uvicorn-2", "uvicorn ×2", "uvicorn_2.sh", 2),
    Config("gunicorn-uvicorn-worker", "gunicorn + uvicorn-worker ×2",
           "gunicorn_uvicorn_worker.sh", 2),
    Config("gunicorn-asgi", "gunicorn asgi ×2", "gunicorn_asgi.sh", 2),
    Config("granian", "granian ×2", "granian.sh", 2),
)


@dataclass(frozen=True)
class Case:
    key: str
    path: str  # an endpoint of main.py
    connections: int


# /blocking comes last: it leaves a queue of stalled requests behind it.
CASES = (
    Case("hello", "/", 32),
    Case("io", "/io", 32),
    Case("io-256", "/io", 256),
    Case("cpu", "/cpu", 32),
    Case("threadpool", "/threadpool", 32),
    Case("threadpool-256", "/threadpool", 256),
    Case("blocking", "/blocking", 32),
)
QUICK_CASES = ("io", "threadpool", "blocking")
PACKAGES = ("fastapi", "starlette", "anyio", "uvicorn", "uvloop", "httptools", "gunicorn",
            "uvicorn-worker", "granian")

THREADS = 2  # wrk threads; each case sets its number of connections
SECONDS = 5  # per measurement (--quick: 2)
WARMUP = 1  # seconds of the same load before each measurement, not counted (not for /blocking)
WRK_TIMEOUT = 10  # seconds; a slower answer counts as an error


# --------------------------------------------------------------------------- measuring


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    found["wrk"] = re.search(r"wrk (\S+)", out.stdout + out.stderr)[1]
    return found


def app_settings() -> dict[str, float]:
    """The endpoints' wait, one CPU burst's duration here, and the thread pool's size."""
    import anyio
    import anyio.to_thread

    sys.path.insert(0, str(HERE))
    try:
        import main
    finally:
        sys.path.remove(str(HERE))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        main.burn_cpu()
        times.append(time.perf_counter() - start)

    async def pool_size() -> float:  # where FastAPI runs plain def endpoints
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    return {"wait_ms": main.WAIT * 1000, "thread_pool": anyio.run(pool_size),
            "cpu_burst_ms": round(statistics.median(times) * 1000, 2)}


def app_sha256() -> str:
    """Identifies the app measured: a changed main.py needs a new measurement."""
    return hashlib.sha256((HERE / "main.py").read_bytes()).hexdigest()[:12]


def command_of(config: Config) -> str:
    lines = (HERE / config.script).read_text().splitlines()
    return " ".join(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local(command: str, port: int) -> str:
    """The command as run here: loopback only, and a free port instead of 8000."""
    command = re.sub(r"(?<![\d.])0\.0\.0\.0(?![\d.])", "127.0.0.1", command)
    return re.sub(r"(?<![\d.])8000(?!\d)", str(port), command)


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # even if http_proxy is set


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):  # Linux: SIGKILL the server if this script dies
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)


def start(config: Config, port: int, workdir: Path) -> subprocess.Popen:
    env = dict(os.environ)
    for var in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "GRANIAN_WORKERS"):
        env.pop(var, None)  # only the command itself configures the server
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    runtime = workdir / config.key
    runtime.mkdir(mode=0o700)
    env["XDG_RUNTIME_DIR"] = str(runtime)  # Gunicorn's control socket: one per server
    with (workdir / f"{config.key}.log").open("wb") as log:
        return subprocess.Popen(
            ["bash", "-c", local(command_of(config), port)], cwd=HERE, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its process group
    proc.wait(timeout=5)


def wait_until_every_worker_answers(config: Config, port: int, proc, workdir: Path) -> None:
    """Each answer of GET / names the worker's PID: wait until all workers have answered.

    Also the barrier between two measurements: a worker answers once it has worked off the
    requests still queued from the last one.
    """
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < config.workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            log = (workdir / f"{config.key}.log").read_text(errors="replace")
            sys.exit(f"{config.label}: not ready (workers seen: {len(pids)})\n{log[-3000:]}")
        try:
            with NO_PROXY.open(f"http://127.0.0.1:{port}/", timeout=2) as r:
                pids.add(json.load(r)["pid"])
        except OSError:
            time.sleep(0.1)


def wrk_command(url: str, connections: int, seconds: int) -> str:
    """One measurement's wrk command, run in snippets/benchmarks/ (report.lua is there);
    snippets/benchmarks/wrk.sh is this command for one case, as a reader runs it."""
    return shlex.join([
        "wrk", "--threads", str(THREADS), "--connections", str(connections),
        "--duration", f"{seconds}s", "--timeout", f"{WRK_TIMEOUT}s", "--script", "report.lua",
        url,
    ])


def wrk(url: str, connections: int, seconds: int) -> dict:
    """One wrk run; report.lua prints its summary as JSON on the last line."""
    out = subprocess.run(shlex.split(wrk_command(url, connections, seconds)), cwd=HERE,
                         capture_output=True, text=True, check=True,
                         timeout=seconds + WRK_TIMEOUT + 30)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    ms = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "mean_ms": ms["mean"], "p50_ms": ms["p50"], "p90_ms": ms["p90"], "p99_ms": ms["p99"],
        "max_ms": ms["max"],
        "errors": raw["errors"],  # socket errors, timeouts, and "status": HTTP 4xx/5xx
    }


def measure(quick: bool) -> dict:
    if not shutil.which("wrk"):
        sys.exit("wrk not found: install it first (Debian and Ubuntu: the wrk package)")
    seconds = QUICK_SECONDS if quick else SECONDS
    cases = [c for c in CASES if c.key in QUICK_CASES or not quick]
    data = {
        "command": COMMAND + (" --quick" if quick else ""),
        "quick": quick,
        "date": datetime.date.today().isoformat(),
        "machine": loadguard.machine(),
        "load_before": round(os.getloadavg()[0], 2),
        "versions": versions(),
        "app_sha256": app_sha256(),
        "settings": {"threads": THREADS, "seconds": seconds, "warmup": WARMUP,
                     "timeout": WRK_TIMEOUT, **app_settings()},
        "configs": [{"key": c.key, "label": c.label, "workers": c.workers,
                     "command": command_of(c)} for c in CONFIGS],
        "cases": {c.key: {"path": c.path, "connections": c.connections} for c in cases},
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for config in CONFIGS:
            port = free_port()
            proc = start(config, port, Path(tmp))
            try:
                wait_until_every_worker_answers(config, port, proc, Path(tmp))
                row = data["results"][config.key] = {}
                for case in cases:
                    url = f"http://127.0.0.1:{port}{case.path}"
                    if case.path != "/blocking":  # threads started, code paths warm
                        wrk(url, case.connections, WARMUP)
                        wait_until_every_worker_answers(config, port, proc, Path(tmp))
                    row[case.key] = r = wrk(url, case.connections, seconds)
                    print(f"{config.label:30} {case.key:15} {r['rps']:8.1f} req/s  "
                          f"p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                          f"errors {sum(r['errors'].values())}", flush=True)
                    wait_until_every_worker_answers(config, port, proc, Path(tmp))
            finally:
                stop(proc)
    data["load_after"] = round(os.getloadavg()[0], 2)
    return data


# --------------------------------------------------------------------------- rendering

TEXT = {
    "en": {
        "measured": "Measured on {date} on **{cpu}**, {cores} cores, {memory} of memory, {os}, "
        "Python {python}. Load average (1 min): {load_before} before the run, {load_after} "
        "after.",
        "method": "wrk {wrk} with {threads} threads, {seconds} s per measurement{warmup}. Each "
        "server ran alone on 127.0.0.1; wrk ran on the same machine.",
        "warmup": ", each after {warmup} s of the same load that is not counted (except the "
        "blocking case, which has nothing to warm up)",
        "versions": "Versions: {versions}.",
        "caption": "**{title}** (`GET {path}`). {note}",
        "command": "Measured again by this command, run from the repository root:",
        "quick": "**Quick run**: {seconds} s per measurement and only some cases. These "
        "numbers only check that the benchmark works; they are not the page's results.",
        "columns": ["Server", "Requests/s", "Ceiling", "p50 (ms)", "p99 (ms)", "Requests (failed)"],
        "case": "{title}, {connections} connections",
        "hello": "Trivial response", "io": "Awaited {wait} ms I/O wait",
        "cpu": "Short CPU burst", "threadpool": "Blocking {wait} ms call in a plain def",
        "blocking": "Blocking {wait} ms call inside async def",
        "ceiling": {
            "hello": "No ceiling but the CPU.",
            "io": "Ceiling: {connections} connections, each waiting {wait} ms per request.",
            "threadpool": "Ceiling: {connections} connections, each waiting {wait} ms per "
            "request, and at most {pool} such calls at once per worker (the thread pool).",
            "cpu": "Ceiling: one burst takes {burst} ms here, and a worker runs one at a time "
            "on one of the {cores} cores.",
            "blocking": "Ceiling: each worker's event loop stops for {wait} ms per request.",
        },
        "axis": "requests/s",
        "chart": "{title}",
        "waiting": "The same {wait} ms wait, three ways ({server})",
        "connections": "{connections} connections",
    },
    "vi": {
        "measured": "Đo ngày {date} trên **{cpu}**, {cores} lõi, {memory} bộ nhớ, {os}, "
        "Python {python}. Load average (1 phút): {load_before} trước khi chạy, {load_after} "
        "sau khi chạy.",
        "method": "wrk {wrk} với {threads} luồng, mỗi phép đo {seconds} giây{warmup}. Mỗi lần "
        "chỉ một server chạy trên 127.0.0.1; wrk chạy trên cùng máy.",
        "warmup": "; trước mỗi phép đo có {warmup} giây chạy cùng tải đó để làm nóng, không tính "
        "vào kết quả (trừ trường hợp blocking, vốn chẳng có gì để làm nóng)",
        "versions": "Phiên bản: {versions}.",
        "caption": "**{title}** (`GET {path}`). {note}",
        "command": "Đo lại bằng lệnh này, chạy từ thư mục gốc của repository:",
        "quick": "**Bản chạy nhanh**: mỗi phép đo {seconds} giây và chỉ vài trường hợp. Các số "
        "này chỉ để kiểm tra benchmark chạy được, không phải kết quả của trang.",
        "columns": ["Server", "Request/giây", "Trần lý thuyết", "p50 (ms)", "p99 (ms)",
                    "Số request (lỗi)"],
        "case": "{title}, {connections} kết nối",
        "hello": "Phản hồi tối giản", "io": "Chờ I/O {wait} ms bằng await",
        "cpu": "Một đoạn tính toán CPU ngắn",
        "threadpool": "Lời gọi blocking {wait} ms trong def thường",
        "blocking": "Lời gọi blocking {wait} ms trong async def",
        "ceiling": {
            "hello": "Không có trần nào ngoài CPU.",
            "io": "Trần: {connections} kết nối, mỗi request chờ {wait} ms.",
            "threadpool": "Trần: {connections} kết nối, mỗi request chờ {wait} ms, và mỗi "
            "worker chạy cùng lúc tối đa {pool} lời gọi như vậy (thread pool).",
            "cpu": "Trần: trên máy này một lần tính mất {burst} ms, và mỗi worker chỉ tính "
            "lần lượt từng request, trên một trong {cores} lõi.",
            "blocking": "Trần: event loop của mỗi worker đứng yên {wait} ms cho mỗi request.",
        },
        "axis": "request/giây",
        "chart": "{title}",
        "waiting": "Cùng {wait} ms chờ, ba cách viết ({server})",
        "connections": "{connections} kết nối",
    },
    "zh": {
        "measured": "测量日期 {date}，机器：**{cpu}**，{cores} 核，内存 {memory}，{os}，"
        "Python {python}。1 分钟平均负载：运行前 {load_before}，运行后 {load_after}。",
        "method": "wrk {wrk}，{threads} 个线程，每项测量 {seconds} 秒{warmup}。每次只有一个"
        "服务器在 127.0.0.1 上运行；wrk 与它在同一台机器上。",
        "warmup": "，每项测量前先用同样的负载预热 {warmup} 秒且不计入结果（阻塞场景除外，它没有"
        "什么需要预热）",
        "versions": "版本：{versions}。",
        "caption": "**{title}**（`GET {path}`）。{note}",
        "command": "在仓库根目录运行下面这条命令即可重新测量：",
        "quick": "**快速运行**：每项测量 {seconds} 秒，只测部分场景。这些数字只用于检查基准"
        "测试能否运行，不是本页的结果。",
        "columns": ["服务器", "每秒请求数", "理论上限", "p50（ms）", "p99（ms）", "请求数（失败）"],
        "case": "{title}，{connections} 个连接",
        "hello": "最简响应", "io": "用 await 等待 {wait} ms I/O", "cpu": "短时 CPU 计算",
        "threadpool": "普通 def 中的 {wait} ms 阻塞调用",
        "blocking": "async def 中的 {wait} ms 阻塞调用",
        "ceiling": {
            "hello": "除 CPU 外没有上限。",
            "io": "上限：{connections} 个连接，每个请求等待 {wait} ms。",
            "threadpool": "上限：{connections} 个连接，每个请求等待 {wait} ms；且每个工作进程"
            "同一时刻最多执行 {pool} 个这样的调用（线程池）。",
            "cpu": "上限：在本机上一次计算耗时 {burst} ms，每个工作进程一次只算一个请求，"
            "占用 {cores} 个核心中的一个。",
            "blocking": "上限：每个请求让所在工作进程的事件循环停住 {wait} ms。",
        },
        "axis": "每秒请求数",
        "chart": "{title}",
        "waiting": "同样等待 {wait} ms 的三种写法（{server}）",
        "connections": "{connections} 个连接",
    },
}
LANGS = tuple(TEXT)
# The headline chart: the same wait written three ways, on the first configuration.
WAITING = {"io": "await asyncio.sleep", "threadpool": "def + time.sleep",
           "blocking": "async def + time.sleep", "io-256": "await asyncio.sleep",
           "threadpool-256": "def + time.sleep"}
# One chart per case, servers side by side (where the servers can differ).
CHARTED = ("hello", "io-256", "cpu", "threadpool-256", "blocking")


def endpoint(case_key: str) -> str:
    return case_key.split("-")[0]


def ceiling(data: dict, case_key: str, workers: int) -> float | None:
    """The most requests per second the case allows, from its settings alone."""
    s, connections = data["settings"], data["cases"][case_key]["connections"]
    wait = s["wait_ms"] / 1000
    return {
        "hello": None,
        "io": connections / wait,
        "threadpool": min(connections, s["thread_pool"] * workers) / wait,
        "blocking": workers / wait,
        "cpu": min(workers, int(data["machine"]["cores"])) / (s["cpu_burst_ms"] / 1000),
    }[endpoint(case_key)]


def millis(value: float, lang: str) -> str:
    return number(value, lang, 1 if value < 100 else 0)


def title(data: dict, case_key: str, lang: str) -> str:
    t = TEXT[lang]
    name = t[endpoint(case_key)].format(wait=number(data["settings"]["wait_ms"], lang))
    return t["case"].format(title=name, connections=data["cases"][case_key]["connections"])


def render_markdown(data: dict, lang: str) -> str:
    t, s, m = TEXT[lang], data["settings"], data["machine"]
    warmup = t["warmup"].format(warmup=s["warmup"]) if s["warmup"] else ""
    out = []
    if data["quick"]:
        out += ["!!! warning", "", "    " + t["quick"].format(seconds=s["seconds"]), ""]
    out += [
        t["measured"].format(date=data["date"], load_before=number(data["load_before"], lang, 2),
                             load_after=number(data["load_after"], lang, 2), **m)
        + steal(data, lang),
        "",
        t["method"].format(wrk=data["versions"]["wrk"], threads=s["threads"],
                           seconds=s["seconds"], warmup=warmup),
        "",
        t["versions"].format(versions=", ".join(f"{k} {v}" for k, v in data["versions"].items())),
        "",
        t["command"],
        "",
        "```bash",
        COMMAND + (" --quick" if data["quick"] else ""),
        "```",
    ]
    configs = {c["key"]: c for c in data["configs"]}
    for key, case in data["cases"].items():
        note = t["ceiling"][endpoint(key)].format(
            connections=case["connections"], wait=number(s["wait_ms"], lang),
            pool=s["thread_pool"], burst=number(s["cpu_burst_ms"], lang, 1), cores=m["cores"])
        out += ["", t["caption"].format(title=title(data, key, lang), path=case["path"], note=note),
                ""]
        out += ["| " + " | ".join(t["columns"]) + " |", "|---|--:|--:|--:|--:|--:|"]
        for config_key, row in data["results"].items():
            r, config = row[key], configs[config_key]
            top = ceiling(data, key, config["workers"])
            cells = [config["label"].replace(" ", "\u00a0"), number(r["rps"], lang),
                     "—" if top is None else number(top, lang), millis(r["p50_ms"], lang),
                     millis(r["p99_ms"], lang),
                     f"{r['requests']} ({sum(r['errors'].values())})"]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def axis_end(values: list[float]) -> int:
    """A round end for the value axis, with room for the labels: the axis starts at 0."""
    top = max(max(values), 1) * 1.15
    step = 10 ** math.floor(math.log10(top))
    return int(next(m * step for m in (1, 2, 2.5, 5, 10) if m * step >= top))


def xychart(chart_title: str, labels: list[str], values: list[float], axis: str) -> str:
    """A Mermaid bar chart: horizontal bars, so that long labels stay readable."""
    quoted = ", ".join(json.dumps(label, ensure_ascii=False) for label in labels)
    return "\n".join([
        "---",
        "config:",
        "  xyChart:",
        "    width: 640",
        f"    height: {120 + 44 * len(values)}",
        "    showDataLabel: true",
        "    showDataLabelOutsideBar: true",
        "    yAxis:",
        "      showLabel: false",  # each bar carries its value
        "      showTick: false",
        "  themeVariables:",
        "    xyChart:",
        '      plotColorPalette: "#009688"',
        "---",
        "xychart-beta horizontal",
        f"    title {json.dumps(chart_title, ensure_ascii=False)}",
        f"    x-axis [{quoted}]",
        f"    y-axis {json.dumps(axis, ensure_ascii=False)} 0 --> {axis_end(values)}",
        f"    bar [{', '.join(str(round(v)) for v in values)}]",
    ]) + "\n"


def render_charts(data: dict, lang: str) -> dict[str, str]:
    t, suffix = TEXT[lang], "" if lang == "en" else f".{lang}"
    labels = {c["key"]: c["label"] for c in data["configs"]}
    first = next(iter(data["results"]))
    waiting = [key for key in WAITING if key in data["cases"]]
    charts = {f"chart-waiting{suffix}.mmd": xychart(
        t["waiting"].format(wait=number(data["settings"]["wait_ms"], lang),
                            server=labels[first]),
        [f"{WAITING[key]} · {t['connections']}".format(**data["cases"][key])
         for key in waiting],
        [data["results"][first][key]["rps"] for key in waiting], t["axis"])}
    for key in CHARTED:
        if key in data["cases"]:
            charts[f"chart-{key}{suffix}.mmd"] = xychart(
                t["chart"].format(title=title(data, key, lang)),
                [labels[config_key] for config_key in data["results"]],
                [row[key]["rps"] for row in data["results"].values()], t["axis"])
    return charts



# --------------------------------------------------------------------------- the plan

#: The plan's words: what every full run measures, rendered into plan.md (.vi.md, .zh.md).
PLAN_TEXT = {
    "en": {
        "configs": "**Configurations**, one after the other: {configs} (×2: two worker "
        "processes).",
        "cases": "**Cases**, in this order; every configuration runs every case, and "
        "`/blocking` comes last because it leaves a queue of stalled requests behind it:",
        "columns": ["Case", "Endpoint", "Connections"],
        "measurement": "**Each measurement**: wrk with {threads} threads for {seconds} s, after "
        "{warmup} s of the same load that is not counted (not for `/blocking`); an answer slower "
        "than {timeout} s counts as an error.",
        "quick": "**A quick run** measures {quick_seconds} s per case, and only {quick}.",
    },
    "vi": {
        "configs": "**Cấu hình**, lần lượt từng cái: {configs} (×2: hai tiến trình worker).",
        "cases": "**Trường hợp đo**, theo thứ tự này; cấu hình nào cũng chạy đủ mọi trường hợp, "
        "và `/blocking` chạy sau cùng vì nó để lại một hàng đợi request bị kẹt:",
        "columns": ["Trường hợp", "Endpoint", "Số kết nối"],
        "measurement": "**Mỗi phép đo**: wrk với {threads} luồng trong {seconds} giây, sau "
        "{warmup} giây chạy cùng tải đó để làm nóng, không tính vào kết quả (trừ `/blocking`); "
        "phản hồi nào chậm hơn {timeout} giây bị tính là lỗi.",
        "quick": "**Bản chạy nhanh** đo mỗi trường hợp {quick_seconds} giây, và chỉ đo {quick}.",
    },
    "zh": {
        "configs": "**配置**，依次运行：{configs}（×2：两个工作进程）。",
        "cases": "**场景**，按此顺序；每个配置都运行全部场景，`/blocking` 放在最后，因为它会留下"
        "一串被卡住的请求：",
        "columns": ["场景", "端点", "连接数"],
        "measurement": "**每项测量**：wrk 用 {threads} 个线程运行 {seconds} 秒，之前先用同样的"
        "负载预热 {warmup} 秒且不计入结果（`/blocking` 除外）；超过 {timeout} 秒的响应计为错误。",
        "quick": "**快速运行**每个场景只测 {quick_seconds} 秒，且只测 {quick}。",
    },
}
QUICK_SECONDS = 2


def render_plan(lang: str) -> str:
    """The plan of a full run (CONFIGS, CASES and the settings above), in ``lang``."""
    t = PLAN_TEXT[lang]
    comma = "、" if lang == "zh" else ", "
    rows = [f"| {c.key} | `GET {c.path}` | {c.connections} |" for c in CASES]
    return "\n".join([
        "- " + t["configs"].format(configs=comma.join(c.label for c in CONFIGS)),
        "- " + t["cases"],
        "",
        "    | " + " | ".join(t["columns"]) + " |",
        "    |---|---|--:|",
        *("    " + row for row in rows),
        "",
        "- " + t["measurement"].format(threads=THREADS, seconds=SECONDS, warmup=WARMUP,
                                      timeout=WRK_TIMEOUT),
        "- " + t["quick"].format(quick_seconds=QUICK_SECONDS, quick=comma.join(QUICK_CASES)),
    ]) + "\n"


def plan_outputs() -> dict[str, str]:
    """The plan in every language: file name -> text (rendered from this module alone)."""
    return {f"plan{'' if lang == 'en' else '.' + lang}.md": render_plan(lang)
            for lang in PLAN_TEXT}

def outputs(data: dict) -> dict[str, str]:
    """Every file generated from the data: file name -> text."""
    files = {"results.json": json.dumps(data, indent=2, ensure_ascii=False) + "\n"}
    for lang in LANGS:
        suffix = "" if lang == "en" else f".{lang}"
        files[f"results{suffix}.md"] = render_markdown(data, lang)
        files.update(render_charts(data, lang))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per measurement, 3 cases")
    parser.add_argument("--out", type=Path, help="where to write (default: snippets/benchmarks/; "
                        "for --quick, a new temporary folder)")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: rewrite the plan, tables and charts "
                        "(from results.json)")
    args = parser.parse_args()
    quick_run = args.quick and not args.render
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-quick-")) if quick_run else HERE)
    if args.render:
        data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    else:
        # A SIGTERM ends the run through the finally blocks, which stop the server.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
        data = measure(args.quick)
    out.mkdir(parents=True, exist_ok=True)
    files = outputs(data)
    if args.render:  # the plan comes from this module: rendered with the tables
        files.update(plan_outputs())
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {out}")


if __name__ == "__main__":
    main()
