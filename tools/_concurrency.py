"""Measure the concurrency page's claims on this machine and write measured.md (.vi.md, .zh.md).

Tooling, not a snippet: ``python -m tools measure concurrency`` runs it behind the load guard
(``tools/measure.py``); ``python -m tools render concurrency`` rewrites the tables from
measured.data.json without measuring. It starts each server the page shows through the test
harness, measures it, and stops it. The tests of the concurrency page import :func:`run` and
:class:`Run` from here, and run the whole measurement once on a small scale (``TEST``).
"""

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import psutil

from tools import loadguard
from tools.locale_numbers import number, steal  # one number format for every table

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "snippets" / "concurrency"  # the page's snippets


@dataclass
class Run:
    """What one batch of requests did: how long it took and how the loop answered meanwhile."""

    latencies: list[float]  # seconds, one per request
    wall: float  # seconds from the first request sent to the last answer
    ping: list[float] = field(default_factory=list)  # /ping latencies meanwhile, seconds
    cpu_by_process: dict[int, float] = field(default_factory=dict)  # CPU seconds used meanwhile
    answers: list[dict] = field(default_factory=list)  # the JSON answers, in arrival order

    @property
    def pids(self) -> set[int]:
        """The worker processes that answered (the answers' "pid" fields)."""
        return {a["pid"] for a in self.answers if "pid" in a}

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_process.values())

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def ping_median(self) -> float:
        return statistics.median(self.ping) if self.ping else float("nan")

    @property
    def ping_max(self) -> float:
        return max(self.ping) if self.ping else float("nan")

    @property
    def cores_used(self) -> float:
        return self.cpu_seconds / self.wall if self.cpu_by_process else float("nan")


def cpu_seconds(processes: Iterable[psutil.Process]) -> dict[int, float]:
    """User + system CPU time of these processes and of all their live descendants, by PID."""
    seen: dict[int, float] = {}
    for proc in processes:
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in family:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            seen[p.pid] = t.user + t.system
    return seen


async def run(
    base_url: str,
    path: str,
    requests: int,
    concurrency: int,
    *,
    ping_path: str | None = "/ping",
    ping_every: float = 0.02,
    processes: Iterable[psutil.Process] = (),
    keepalive: bool = True,
) -> Run:
    """Send `requests` GETs to `path`, at most `concurrency` at a time, and ping meanwhile.

    Without keep-alive each request opens its own connection, so every request can go to
    whichever worker process accepts it first: the one that is not busy."""
    processes = list(processes)
    limits = httpx.Limits(max_connections=concurrency,
                          max_keepalive_connections=concurrency if keepalive else 0)
    pings: list[float] = []
    latencies: list[float] = []
    answers: list[dict] = []
    done = asyncio.Event()

    async def pinger() -> None:
        # Its own connection, as another client would have.
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            while not done.is_set():
                await asyncio.sleep(ping_every)
                start = time.perf_counter()
                (await client.get(ping_path)).raise_for_status()
                pings.append(time.perf_counter() - start)

    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                start = time.perf_counter()
                response = await client.get(path)
                latencies.append(time.perf_counter() - start)
            answers.append(response.raise_for_status().json())

        cpu_before = cpu_seconds(processes) if processes else None
        pinging = asyncio.create_task(pinger()) if ping_path else None
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        wall = time.perf_counter() - start
        cpu_after = cpu_seconds(processes) if processes else None
        done.set()
        if pinging:
            await pinging
    used = {}
    if cpu_before is not None and cpu_after is not None:
        used = {pid: t - cpu_before.get(pid, 0.0) for pid, t in cpu_after.items()}
    return Run(latencies=latencies, wall=wall, ping=pings, cpu_by_process=used, answers=answers)


# --------------------------------------------------------------------------- the table

#: (endpoint, what it does); each one gets IO_REQUESTS requests at once.
IO_ROWS = [
    ("/io/await", "`await asyncio.sleep()` in `async def`"),
    ("/io/blocking", "`time.sleep()` in `async def`"),
    ("/io/def", "`time.sleep()` in `def`"),
]
#: (server command, endpoint, how the CPU-bound work runs).
CPU_ROWS = [
    ("concurrency/serve_cpu.sh", "/cpu/inline", "inline in `async def`, 1 worker"),
    ("concurrency/serve_cpu.sh", "/cpu/def", "`def` endpoint (thread pool), 1 worker"),
    ("concurrency/serve_cpu.sh", "/cpu/to-thread", "`asyncio.to_thread`, 1 worker"),
    ("concurrency/serve_cpu.sh", "/cpu/process", "`ProcessPoolExecutor(2)`, 1 worker"),
    ("concurrency/serve_cpu_2_workers.sh", "/cpu/inline", "inline in `async def`, 2 workers"),
    ("concurrency/serve_dirty.sh", "/cpu/dirty", "Gunicorn dirty workers (2), 1 worker"),
]


@dataclass
class Scale:
    io_requests: int = 10
    io_seconds: float = 1.0
    cpu_requests: int = 40
    cpu_concurrency: int = 4
    cpu_n: int = 1_000_000


#: The test suite's run: short, but long enough for its assertions to hold on a busy machine.
TEST = Scale(io_requests=8, io_seconds=0.6, cpu_requests=6, cpu_concurrency=3)


def summary(r: Run) -> dict[str, float]:
    """What the table shows of one run (measured.data.json keeps it, for every language)."""
    return {"wall": r.wall, "per_second": r.per_second, "ping_median": r.ping_median,
            "ping_max": r.ping_max, "cores_used": r.cores_used}


def measure_io(harness, scale: Scale, log_dir: Path) -> dict[str, Run]:
    data = {}
    with harness.serving("concurrency/serve.sh", log_dir=log_dir, expect_clean=False) as server:
        for path, _ in IO_ROWS:
            url = f"{path}?seconds={scale.io_seconds}"
            data[path] = asyncio.run(run(server.url(""), url, scale.io_requests, scale.io_requests))
    return data


def measure_cpu(harness, scale: Scale, log_dir: Path) -> dict[str, Run]:
    data = {}
    by_server: dict[str, list[str]] = {}
    for command, path, _ in CPU_ROWS:
        by_server.setdefault(command, []).append(path)
    for command, paths in by_server.items():
        # Its own TMPDIR: Gunicorn's dirty arbiter keeps a PID file there that another server
        # with the same app name would act on (see the page).
        tmpdir = tempfile.mkdtemp(prefix="hb-measure-")  # short: it holds Unix sockets
        server = harness.start(command, log_dir=log_dir, env={"TMPDIR": tmpdir})
        try:
            server.wait_ready("/ping")
            if "2_workers" in command:
                server.wait_for_workers(2)
            if "dirty" in command:
                server.wait_for_log(r"Dirty worker \d+ listening(.|\n)*Dirty worker \d+ listening")
            family = [server.main_process()]
            for path in paths:
                # Warm up: the first calls start the pool's processes, open connections...
                asyncio.run(run(server.url(""), f"{path}?n=1000", 2, 2, ping_path=None))
                url = f"{path}?n={scale.cpu_n}"
                # With two workers, a new connection per request lets either worker take it.
                data[f"{command} {path}"] = asyncio.run(
                    run(server.url(""), url, scale.cpu_requests, scale.cpu_concurrency,
                        processes=family, keepalive="2_workers" not in command)
                )
        finally:
            # Gunicorn 27.0.1's dirty workers make a SIGTERM wait for the whole graceful
            # timeout (see the page); stop after a short wait instead, then kill the group.
            server.stop(timeout=3 if "dirty" in command else 30, expect_clean=False)
            shutil.rmtree(tmpdir, ignore_errors=True)
    return data


# --------------------------------------------------------------------------- the words

#: The tables' words in each language of the handbook (measured.md, .vi.md, .zh.md).
TEXT = {
    "en": {
        "io_title": "**{requests} requests at once, each waiting {seconds} s**, one worker "
                    "process:",
        "io_columns": ["endpoint", "all answered after", "requests/s",
                       "`/ping` meanwhile (median / max)"],
        "cpu_title": "**{requests} CPU-bound requests, {concurrency} at a time** (`burn({n})`, "
                     "pure Python):",
        "cpu_columns": ["how the work runs", "requests/s", "vs. the first row",
                        "`/ping` meanwhile (median / max)", "CPU cores used"],
        "io_rows": [what for _, what in IO_ROWS],
        "cpu_rows": [what for _, _, what in CPU_ROWS],
        "measured": "Measured on {cpu} ({cores} cores, {memory}), {os}, Python {python}; "
                    "{versions}; {date}; load average {load_before} before, {load_after} after. "
                    "Regenerate with `{command}` from the repository root.",
    },
    "vi": {
        "io_title": "**{requests} request cùng lúc, mỗi request chờ {seconds} giây**, một "
                    "tiến trình worker:",
        "io_columns": ["endpoint", "mọi request đã được trả lời sau", "request/giây",
                       "`/ping` trong lúc đó (trung vị / lớn nhất)"],
        "cpu_title": "**{requests} request CPU-bound, mỗi lúc {concurrency} request** "
                     "(`burn({n})`, Python thuần):",
        "cpu_columns": ["cách chạy công việc", "request/giây", "so với dòng đầu",
                        "`/ping` trong lúc đó (trung vị / lớn nhất)", "số lõi CPU đã dùng"],
        "io_rows": ["`await asyncio.sleep()` trong `async def`",
                    "`time.sleep()` trong `async def`", "`time.sleep()` trong `def`"],
        "cpu_rows": ["tính thẳng trong `async def`, 1 worker",
                     "endpoint `def` (thread pool), 1 worker", "`asyncio.to_thread`, 1 worker",
                     "`ProcessPoolExecutor(2)`, 1 worker", "tính thẳng trong `async def`, 2 worker",
                     "dirty worker của Gunicorn (2), 1 worker"],
        "measured": "Đo trên {cpu} ({cores} lõi, {memory}), {os}, Python {python}; {versions}; "
                    "ngày {date}; load average {load_before} trước khi đo, {load_after} sau khi "
                    "đo. Sinh lại bằng `{command}` từ thư mục gốc của repository.",
    },
    "zh": {
        "io_title": "**同时发出 {requests} 个请求，每个等待 {seconds} 秒**，一个工作进程：",
        "io_columns": ["端点", "全部得到响应用时", "每秒请求数",
                       "同时 `/ping` 的延迟（中位数 / 最大值）"],
        "cpu_title": "**{requests} 个 CPU 密集型请求，每次并发 {concurrency} 个**（`burn({n})`，"
                     "纯 Python）：",
        "cpu_columns": ["工作的运行方式", "每秒请求数", "相对第一行",
                        "同时 `/ping` 的延迟（中位数 / 最大值）", "占用的 CPU 核心数"],
        "io_rows": ["`async def` 中的 `await asyncio.sleep()`", "`async def` 中的 `time.sleep()`",
                    "`def` 中的 `time.sleep()`"],
        "cpu_rows": ["直接在 `async def` 中计算，1 个工作进程",
                     "`def` 端点（线程池），1 个工作进程", "`asyncio.to_thread`，1 个工作进程",
                     "`ProcessPoolExecutor(2)`，1 个工作进程",
                     "直接在 `async def` 中计算，2 个工作进程",
                     "Gunicorn 的 dirty 工作进程（2 个），1 个工作进程"],
        "measured": "测量环境：{cpu}（{cores} 核，{memory}），{os}，Python {python}；{versions}；"
                    "{date}；1 分钟平均负载：测量前 {load_before}，测量后 {load_after}。"
                    "在仓库根目录运行 `{command}` 可重新生成。",
    },
}
LANGS = tuple(TEXT)
COMMAND = "python -m tools measure concurrency"


def render(data: dict, lang: str) -> str:
    """One language's tables, from the data measure() recorded (measured.data.json)."""
    t, scale = TEXT[lang], data["scale"]

    def num(value: float, decimals: int = 0) -> str:
        return number(value, lang, decimals)

    def ms(seconds: float) -> str:
        return f"{num(seconds * 1000)} ms"

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    io = [row([what, f"{num(r['wall'], 2)} s", num(r["per_second"], 1),
               f"{ms(r['ping_median'])} / {ms(r['ping_max'])}"])
          for what, r in zip(t["io_rows"], data["io"].values(), strict=True)]
    base = next(iter(data["cpu"].values()))["per_second"]
    cpu = [row([what, num(r["per_second"], 1), f"{num(r['per_second'] / base, 2)}x",
                f"{ms(r['ping_median'])} / {ms(r['ping_max'])}", num(r["cores_used"], 2)])
           for what, r in zip(t["cpu_rows"], data["cpu"].values(), strict=True)]
    seconds = scale["io_seconds"]
    return "\n".join([
        t["io_title"].format(requests=scale["io_requests"],
                             seconds=num(seconds, 0 if seconds % 1 == 0 else 1)),
        "",
        row(t["io_columns"]),
        "|---" * len(t["io_columns"]) + "|",
        *io,
        "",
        t["cpu_title"].format(requests=scale["cpu_requests"], concurrency=scale["cpu_concurrency"],
                              n=f"{scale['cpu_n']:_}"),
        "",
        row(t["cpu_columns"]),
        "|---" * len(t["cpu_columns"]) + "|",
        *cpu,
        "",
        t["measured"].format(**data["machine"], versions=data["versions"], date=data["date"],
                             load_before=num(data["load_before"], 1),
                             load_after=num(data["load_after"], 1), command=COMMAND)
        + steal(data, lang),
        "",
    ])


def outputs(data: dict, md: Path) -> dict[Path, str]:
    """Every file written from the data: measured.md beside measured.vi.md and .zh.md."""
    files = {md.with_name(f"{md.stem}.data.json"): json.dumps(data, indent=2) + "\n"}
    for lang in LANGS:
        name = md.name if lang == "en" else f"{md.stem}.{lang}{md.suffix}"
        files[md.with_name(name)] = render(data, lang)
    return files


def measure(harness, scale: Scale, log_dir: Path) -> tuple[dict, dict]:
    """Run every row's server and requests: the table's data, and the raw runs."""
    load_before = os.getloadavg()[0]  # other programs' CPU use changes the CPU rows
    io = measure_io(harness, scale, log_dir)
    cpu = measure_cpu(harness, scale, log_dir)
    m = loadguard.machine()
    data = {
        "scale": asdict(scale),
        "io": {path: summary(r) for path, r in io.items()},
        "cpu": {key: summary(r) for key, r in cpu.items()},
        "machine": {k: m[k] for k in ("cpu", "cores", "memory", "os", "python")},
        "versions": ", ".join(f"{name} {version(name)}"
                              for name in ("fastapi", "uvicorn", "gunicorn", "anyio")),
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    return data, {"io": io, "cpu": cpu}


def main() -> None:
    out = Path(os.environ.get("MEASURE_OUTPUT", HERE / "measured.md"))
    if "--render" in sys.argv[1:]:  # measure nothing: rewrite the tables from the data
        data = json.loads(out.with_name(f"{out.stem}.data.json").read_text("utf-8"))
    else:
        # The handbook's test harness starts and stops the servers exactly as the tests do.
        sys.path.insert(0, str(ROOT / "tests"))
        import harness

        scale = TEST if os.environ.get("MEASURE_SCALE") == "test" else Scale()
        log_dir = Path(os.environ.get("HANDBOOK_LOG_DIR", "/tmp/handbook-logs")) / "measure"
        log_dir.mkdir(parents=True, exist_ok=True)
        data, runs = measure(harness, scale, log_dir)
        if os.environ.get("MEASURE_DATA"):  # the raw runs, for the test suite's assertions
            Path(os.environ["MEASURE_DATA"]).write_text(json.dumps(
                {kind: {key: asdict(r) for key, r in rs.items()} for kind, rs in runs.items()},
                default=sorted))
    for path, text in outputs(data, out).items():
        path.write_text(text, "utf-8")
    print(out.read_text("utf-8"))


if __name__ == "__main__":
    main()
