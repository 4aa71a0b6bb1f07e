"""Measure the concurrency page's claims on this machine and write measured.md.

Run it from this folder; it starts each server the page shows, measures it, and stops it:

    python measure.py

The table it writes replaces guessed speed-ups with numbers from real servers.
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

HERE = Path(__file__).resolve().parent


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


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def measure_io(harness, scale: Scale, log_dir: Path) -> tuple[list[str], dict]:
    rows, data = [], {}
    with harness.serving("concurrency/serve.sh", log_dir=log_dir, expect_clean=False) as server:
        for path, what in IO_ROWS:
            url = f"{path}?seconds={scale.io_seconds}"
            r = asyncio.run(run(server.url(""), url, scale.io_requests, scale.io_requests))
            data[path] = r
            rows.append(
                f"| {what} | {r.wall:.2f} s | {r.per_second:.1f} | "
                f"{ms(r.ping_median)} / {ms(r.ping_max)} |"
            )
    return rows, data


def measure_cpu(harness, scale: Scale, log_dir: Path) -> tuple[list[str], dict]:
    rows, data = [], {}
    by_server: dict[str, list[tuple[str, str]]] = {}
    for command, path, what in CPU_ROWS:
        by_server.setdefault(command, []).append((path, what))
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
            for path, what in paths:
                # Warm up: the first calls start the pool's processes, open connections...
                asyncio.run(run(server.url(""), f"{path}?n=1000", 2, 2, ping_path=None))
                url = f"{path}?n={scale.cpu_n}"
                # With two workers, a new connection per request lets either worker take it.
                r = asyncio.run(
                    run(server.url(""), url, scale.cpu_requests, scale.cpu_concurrency,
                        processes=family, keepalive="2_workers" not in command)
                )
                data[f"{command} {path}"] = r
                rows.append((what, r))
        finally:
            # Gunicorn 27.0.1's dirty workers make a SIGTERM wait for the whole graceful
            # timeout (see the page); stop after a short wait instead, then kill the group.
            server.stop(timeout=3 if "dirty" in command else 30, expect_clean=False)
            shutil.rmtree(tmpdir, ignore_errors=True)
    base = rows[0][1].per_second
    lines = [
        f"| {what} | {r.per_second:.1f} | {r.per_second / base:.2f}x | "
        f"{ms(r.ping_median)} / {ms(r.ping_max)} | {r.cores_used:.2f} |"
        for what, r in rows
    ]
    return lines, data


def describe(harness, command: str, load_before: float) -> str:
    m = harness.machine_description()
    versions = ", ".join(
        f"{name} {version(name)}" for name in ("fastapi", "uvicorn", "gunicorn", "anyio")
    )
    return (
        f"Measured on {m['cpu']} ({m['cores']} cores, {m['memory']}), {m['os']}, "
        f"Python {m['python']}; {versions}; {datetime.now(UTC):%Y-%m-%d}; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after. "
        f"Regenerate with `{command}` in `snippets/concurrency/`."
    )


def write_table(harness, scale: Scale, out: Path, log_dir: Path) -> dict:
    load_before = os.getloadavg()[0]  # other programs' CPU use changes the CPU rows
    io_rows, io_data = measure_io(harness, scale, log_dir)
    cpu_rows, cpu_data = measure_cpu(harness, scale, log_dir)
    text = "\n".join(
        [
            f"**{scale.io_requests} requests at once, each waiting {scale.io_seconds:g} s**, "
            "one worker process:",
            "",
            "| endpoint | all answered after | requests/s | `/ping` meanwhile (median / max) |",
            "|---|---|---|---|",
            *io_rows,
            "",
            f"**{scale.cpu_requests} CPU-bound requests, {scale.cpu_concurrency} at a time** "
            f"(`burn({scale.cpu_n:_})`, pure Python):",
            "",
            "| how the work runs | requests/s | vs. the first row | "
            "`/ping` meanwhile (median / max) | CPU cores used |",
            "|---|---|---|---|---|",
            *cpu_rows,
            "",
            describe(harness, "python measure.py", load_before),
            "",
        ]
    )
    out.write_text(text, "utf-8")
    return {"io": io_data, "cpu": cpu_data}


def main() -> None:
    # The handbook's test harness starts and stops the servers exactly as the tests do.
    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    import harness

    scale = TEST if os.environ.get("MEASURE_SCALE") == "test" else Scale()
    out = Path(os.environ.get("MEASURE_OUTPUT", HERE / "measured.md"))
    log_dir = Path(os.environ.get("HANDBOOK_LOG_DIR", "/tmp/handbook-logs")) / "measure"
    log_dir.mkdir(parents=True, exist_ok=True)
    data = write_table(harness, scale, out, log_dir)
    if os.environ.get("MEASURE_DATA"):  # the raw runs, for the test suite's assertions
        Path(os.environ["MEASURE_DATA"]).write_text(json.dumps(
            {kind: {key: asdict(r) for key, r in runs.items()} for kind, runs in data.items()},
            default=sorted))
    print(out.read_text("utf-8"))


if __name__ == "__main__":
    main()
