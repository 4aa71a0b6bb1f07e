"""docs/benchmarks.md: one command measures every server configuration with wrk.

The page's orderings are checked twice: on a short run of the same measurement made now
(``python -m tools measure benchmarks --quick``, two seconds per measurement) and on the
committed full results that the page shows. Only ratios and orderings within one run are
asserted, with wide margins, because the suite runs on a small, busy machine.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import harness
import pages
from tools import _bench as bench  # the measuring code (tooling, behind `tools measure`)
from tools import loadguard, locale_numbers

BENCH_DIR = harness.SNIPPETS / "benchmarks"
APP = harness.snippet("benchmarks/main.py")
LUA = harness.snippet("benchmarks/report.lua")  # wrk's done() hook, run by every measurement
WRK = harness.snippet("benchmarks/wrk.sh")  # one measurement, as the tool runs each
CONFIGS = {  # tools/_bench.py key -> the command snippet it runs
    "uvicorn-1": "benchmarks/uvicorn_1.sh",
    "uvicorn-2": "benchmarks/uvicorn_2.sh",
    "gunicorn-uvicorn-worker": "benchmarks/gunicorn_uvicorn_worker.sh",
    "gunicorn-asgi": "benchmarks/gunicorn_asgi.sh",
    "granian": "benchmarks/granian.sh",
}
# Written by tools/_bench.py from results.json; the page includes them.
GENERATED = ("benchmarks/results.json", "benchmarks/results.md", "benchmarks/results.vi.md",
             "benchmarks/results.zh.md")
# Written by tools/_bench.py from its plan (CONFIGS, CASES, settings); the page includes them.
PLAN = ("benchmarks/plan.md", "benchmarks/plan.vi.md", "benchmarks/plan.zh.md")
REGENERATE = f"run `{bench.COMMAND}` from the repository root on a quiet machine"



def reader_version(name: str) -> str:
    """A package's version in the page's reader environment (its requirements.txt alone)."""
    return harness.reader_env("benchmarks").version(name)


@pytest.fixture(scope="session")
def wrk() -> str:
    return harness.ensure_debian_packages("wrk", ["wrk"])


@pytest.fixture
def quick_run(tmp_path_factory: pytest.TempPathFactory, wrk: str) -> dict:
    """``python -m tools measure benchmarks --quick --out DIR``: the measurement in its short
    form, run once (``--under-load``: the suite's machine is busy; nothing is committed).

    Once per test run (``harness.once``), whichever test process asks first.
    """
    run = harness.once(tmp_path_factory, "bench-quick", run_quick)
    if "failure" in run:
        pytest.fail(run["failure"], pytrace=False)
    return {**run, "out": Path(run["out"])}


def run_quick(out: Path) -> dict:
    log = out / "bench.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(
            # The tool runs the measurement in the page's reader environment (its pins).
            [sys.executable, "-m", "tools", "measure", "benchmarks", "--quick",
             loadguard.UNDER_LOAD_FLAG, "--out", str(out)], cwd=harness.ROOT,
            env=harness.base_env(), stdin=subprocess.DEVNULL, stdout=f,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        rc = proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the tool stops its server in a finally block
        proc.wait(timeout=30)
        rc = "still running after 240 s"
    finally:
        harness.kill_group(proc.pid)
    if rc != 0:
        return {"failure": f"{bench.COMMAND} --quick: exit code {rc}\n{log.read_text()[-3000:]}"}
    return {"data": json.loads((out / "results.json").read_text("utf-8")), "out": str(out)}


def committed() -> dict:
    return json.loads(harness.snippet("benchmarks/results.json").text)


@pytest.fixture(params=["quick run", "committed results"])
def results(request: pytest.FixtureRequest) -> dict:
    """The same claim, checked on a run made now and on the numbers the page shows."""
    if request.param == "quick run":
        return request.getfixturevalue("quick_run")["data"]  # runs it once, on first use
    return committed()


def rps(data: dict, config: str, case: str) -> float:
    return data["results"][config][case]["rps"]


def where(data: dict) -> str:
    return "quick run made now" if data["quick"] else f"committed results ({REGENERATE})"


# --------------------------------------------------------------------------- the orderings


def test_awaiting_beats_blocking_on_every_server(results: dict) -> None:
    """Awaiting a 50 ms wait serves many times more requests than blocking for it in async def.

    Theory: about the number of connections per worker (32x with one worker, 16x with two).
    """
    for config in results["results"]:
        io, blocking = rps(results, config, "io"), rps(results, config, "blocking")
        assert io >= 4 * blocking, f"{config}: /io {io} vs /blocking {blocking} ({where(results)})"


def test_blocking_call_makes_every_request_wait_in_line(results: dict) -> None:
    """With the event loop stopped, requests queue: mean latency many times the 50 ms wait.

    Theory: connections / workers waits (32 with one worker); less in a short run.
    """
    wait = results["settings"]["wait_ms"]
    for config, row in results["results"].items():
        mean = row["blocking"]["mean_ms"]
        assert mean >= 4 * wait, f"{config}: /blocking mean latency {mean} ms, wait {wait} ms"


def test_latency_is_never_below_the_wait(results: dict) -> None:
    """wrk times whole requests: no answer from the waiting endpoints beats the 50 ms wait."""
    wait = results["settings"]["wait_ms"]
    for config, row in results["results"].items():
        for case in ("io", "threadpool", "blocking"):
            assert row[case]["p50_ms"] >= wait, f"{config} {case}: p50 {row[case]['p50_ms']} ms"


def test_two_workers_double_the_blocking_endpoint(results: dict) -> None:
    """A blocked event loop serves one request per 50 ms; each extra worker adds another loop."""
    one = rps(results, "uvicorn-1", "blocking")
    for config in results["configs"]:
        if config["workers"] == 2:
            two = rps(results, config["key"], "blocking")
            assert two >= 1.4 * one, f"{config['key']}: {two} req/s vs uvicorn ×1 {one} req/s"


def test_plain_def_moves_the_blocking_call_off_the_event_loop(results: dict) -> None:
    """The same time.sleep in a plain def runs in the thread pool: the loop keeps serving."""
    for config in results["results"]:
        pool, blocking = rps(results, config, "threadpool"), rps(results, config, "blocking")
        assert pool >= 4 * blocking, f"{config}: /threadpool {pool} vs /blocking {blocking} req/s"


def test_thread_pool_caps_plain_def_endpoints(log_dir: Path) -> None:
    """A def endpoint runs at most 40 calls at once per worker, and under load exactly 40.

    Measured live, not from the table: sixty 4-second calls to the concurrency page's def
    endpoint (one worker, AnyIO's default pool) are sent at once. Each answer says when its
    call got a thread; exactly 40 start before the first one ends, and the other 20 wait.
    Long calls make this independent of how fast a loaded machine sends the requests.
    """
    import asyncio

    import httpx

    calls, seconds = 60, 4

    async def send_all(url: str) -> list[dict]:
        limits = httpx.Limits(max_connections=calls)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            answers = await asyncio.gather(*(client.get(url) for _ in range(calls)))
        return [r.raise_for_status().json() for r in answers]

    with harness.serving("concurrency/serve_threadpool.sh", log_dir=log_dir,
                         cwd=harness.SNIPPETS / "concurrency", ready_path="/threadpool",
                         expect_clean=False) as server:  # uvicorn re-raises SIGTERM: exit -15
        assert server.get("/threadpool").json()["total_tokens"] == 40
        answers = asyncio.run(send_all(server.url(f"/sync?seconds={seconds}")))
    first_end = min(a["ended"] for a in answers)
    at_once = sum(1 for a in answers if a["started"] < first_end)
    assert at_once == committed()["settings"]["thread_pool"] == 40, (
        f"{at_once} calls ran at once, not the pool's 40")


def test_thread_pool_table_stays_under_the_cap() -> None:
    """Full run only: at 256 connections no def endpoint went past 40 calls per worker per
    50 ms, and one worker's requests queued for a thread (p50 well above the wait)."""
    results = committed()
    s = results["settings"]
    workers = {c["key"]: c["workers"] for c in results["configs"]}
    for config, row in results["results"].items():
        cap = s["thread_pool"] * workers[config] / (s["wait_ms"] / 1000)
        assert row["threadpool-256"]["rps"] <= 1.1 * cap, f"{config}: above the pool's {cap} req/s"
    queued = results["results"]["uvicorn-1"]["threadpool-256"]["p50_ms"]
    assert queued >= 2 * s["wait_ms"], f"one worker, 256 connections: p50 {queued} ms, no queue?"


def spread(results: dict, case: str, configs: list[str]) -> float:
    values = [rps(results, config, case) for config in configs]
    return max(values) / min(values)


def test_servers_differ_little_when_the_endpoint_waits() -> None:
    """At 32 connections the wait sets the pace: on /io every configuration, and on /blocking
    every two-worker one, within 1.5x of the others.

    Full run only: a short run on a busy machine is CPU-starved, and then it is.
    """
    results = committed()
    two_workers = [c["key"] for c in results["configs"] if c["workers"] == 2]
    assert spread(results, "io", list(results["results"])) <= 1.5, REGENERATE
    assert spread(results, "blocking", two_workers) <= 1.5, REGENERATE


def test_servers_stay_close_at_256_connections() -> None:
    """At 256 connections on /io the configurations stay within 1.5x of each other too, and the
    factor each language's page quotes is the committed table's, rounded as the page writes it."""
    results = committed()
    io_256 = {config: rps(results, config, "io-256") for config in results["results"]}
    factor = spread(results, "io-256", list(io_256))
    assert factor <= 1.5, (io_256, REGENERATE)
    for lang in pages.LANGS:
        page = pages.load(pages.page_path("benchmarks", lang))
        sentence = page.claim("test_servers_stay_close_at_256_connections")
        quoted = locale_numbers.number(factor, lang, 1)
        assert re.search(rf"(?<![\d.,]){re.escape(quoted)}(?![\d])", sentence), (
            f"{page.rel}: the sentence citing this test should quote the factor {quoted} "
            f"(from snippets/benchmarks/results.json): {sentence!r}")


def test_no_errors_on_endpoints_that_do_not_block(results: dict) -> None:
    """Every request to the non-blocking cases got a 2xx answer: no error, no timeout."""
    for config, row in results["results"].items():
        for case, r in row.items():
            if case != "blocking":
                assert not any(r["errors"].values()), f"{config} {case}: {r['errors']}"


def test_awaiting_scales_past_the_thread_pool() -> None:
    """Full run only: at 256 connections, awaiting beats the capped def endpoint on one worker."""
    data = committed()
    io, pool = rps(data, "uvicorn-1", "io-256"), rps(data, "uvicorn-1", "threadpool-256")
    assert io >= 1.5 * pool, f"uvicorn ×1: /io-256 {io} vs /threadpool-256 {pool} ({REGENERATE})"


# --------------------------------------------------------------------------- the command


def test_quick_run_writes_tables_and_charts(quick_run: dict) -> None:
    """The short run writes the same kinds of files as the full one, from the same code."""
    data, out = quick_run["data"], quick_run["out"]
    expected = {**bench.outputs(data), **bench.plan_outputs()}
    assert {p.name for p in out.iterdir()} - {"bench.log"} == set(expected)
    for name, text in expected.items():
        assert (out / name).read_text("utf-8") == text, name
    assert data["quick"] and data["command"] == f"{bench.COMMAND} --quick"
    assert data["under_load"], "the load guard's block is in the data"
    assert set(data["results"]) == set(CONFIGS)
    md = (out / "results.md").read_text("utf-8")
    for fact in (data["machine"]["cpu"], f"fastapi {version('fastapi')}",
                 f"{bench.COMMAND} --quick",
                 f"granian {reader_version('granian')}", data["date"]):
        assert fact in md, f"results.md does not name {fact!r}"
    for name, text in expected.items():
        if name.endswith(".mmd"):
            check_chart(name, text)


def check_chart(name: str, text: str) -> None:
    """A Mermaid xychart-beta bar chart: one bar per label, on an axis from 0 past every bar."""
    assert re.search(r"^xychart-beta horizontal$", text, re.M), name
    labels = json.loads(re.search(r"^\s*x-axis (\[.*\])$", text, re.M)[1])
    bars = json.loads(re.search(r"^\s*bar (\[.*\])$", text, re.M)[1])
    assert len(labels) == len(bars) > 1 and all(isinstance(b, int) for b in bars), name
    end = int(re.search(r'^\s*y-axis ".+" 0 --> (\d+)$', text, re.M)[1])
    assert max(bars) < end, name


def test_committed_results_are_current() -> None:
    """results.* were written by the current tools/_bench.py, from a full run with today's
    versions."""
    data = committed()
    problems = []
    if data["quick"]:
        problems.append(f"results.json comes from {data['command']!r}, not the full run")
    for name, expected in bench.outputs(data).items():
        path = BENCH_DIR / name
        if not path.is_file() or path.read_text("utf-8") != expected:
            problems.append(f"snippets/benchmarks/{name} differs from what tools/_bench.py "
                            "renders (`python -m tools render benchmarks`)")
    on_disk = {p.name for pattern in ("results*", "chart-*") for p in BENCH_DIR.glob(pattern)}
    problems += [f"snippets/benchmarks/{name}: not generated by tools/_bench.py"
                 for name in sorted(on_disk - set(bench.outputs(data)))]
    installed = {name: reader_version(name) for name in data["versions"]
                 if name not in ("python", "wrk")}
    installed["python"] = sys.version.split()[0]
    recorded = {k: v for k, v in data["versions"].items() if k != "wrk"}
    if recorded != installed:
        problems.append(f"measured with {recorded}, installed now {installed}")
    commands = {c["key"]: c["command"] for c in data["configs"]}
    current = {key: harness.command_of(harness.snippet(ref)) for key, ref in CONFIGS.items()}
    if commands != current:
        problems.append(f"measured commands {commands} differ from the snippets {current}")
    if data["app_sha256"] != bench.app_sha256():
        problems.append("snippets/benchmarks/main.py changed since the measurement")
    planned = {c.key: {"path": c.path, "connections": c.connections} for c in bench.CASES}
    if data["cases"] != planned:
        problems.append("tools/_bench.py's cases changed since the measurement")
    assert not problems, "\n".join(problems) + f"\nTo regenerate: {REGENERATE}."
    assert set(GENERATED) <= {f"benchmarks/{n}" for n in bench.outputs(data)}


# --------------------------------------------------------------------------- the servers


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIGS)
def test_each_command_serves_every_endpoint_from_its_workers(config: str, log_dir: Path) -> None:
    """Each configuration runs as many workers as its label says, on uvloop, logging no requests."""
    expected = next(c.workers for c in bench.CONFIGS if c.key == config)
    with harness.serving(CONFIGS[config], log_dir=log_dir, cwd=APP.folder) as server:
        loops = wait_until_every_worker_answers(server, expected)
        assert set(loops.values()) == {"uvloop"}, f"event loop of each worker: {loops}"
        with server.client() as client:
            for path in ("/", "/io", "/cpu", "/threadpool", "/blocking"):
                r = client.get(path)
                assert r.status_code == 200 and r.json()["pid"] in loops, (path, r.text)
        assert len(server.workers()) == (expected if expected > 1 else 0)  # 1: no master
        assert "GET /" not in server.log(), "a request was logged"
        # Uvicorn without --workers re-raises the SIGTERM it handled once it has shut down
        # gracefully (uvicorn/server.py), so it ends by that signal instead of with code 0.
        rc = server.stop(expect_clean=False)
        assert rc == (-signal.SIGTERM if config == "uvicorn-1" else 0), server.log()[-2000:]


def wait_until_every_worker_answers(server: harness.Server, count: int,
                                    timeout: float = 60) -> dict[int, str]:
    """Every worker's PID and event loop, once each has answered GET / (new connections).

    Works for every server here; Granian logs no PID when a worker is ready.
    """
    seen: dict[int, str] = {}

    def all_answered() -> dict[int, str] | None:
        workers = {p.pid for p in server.workers()} or {server.main_process().pid}
        if len(workers) == count and set(seen) >= workers:
            return {pid: seen[pid] for pid in workers}
        with server.client() as client:
            answer = client.get("/").json()
        seen[answer["pid"]] = answer["loop"]
        return None

    return harness.wait_until(all_answered, what=f"each of {count} workers answers GET /",
                              timeout=timeout, server=server,
                              describe=lambda: f"answered from {sorted(seen)}")


def test_bench_runs_each_command_as_the_harness_does() -> None:
    """The tool applies the harness's one rewrite (loopback, free port) and nothing else."""
    for key, ref in CONFIGS.items():
        config = next(c for c in bench.CONFIGS if c.key == key)
        assert bench.command_of(config) == harness.command_of(harness.snippet(ref))
        assert bench.local(bench.command_of(config), 12345) == harness.rewrite(
            harness.command_of(harness.snippet(ref)), {8000: 12345})
    assert [c.key for c in bench.CONFIGS] == list(CONFIGS)


def test_one_measurement_is_the_wrk_command_shown(wrk: str, log_dir: Path) -> None:
    """wrk.sh is the tool's command for one case (32 connections on /io), and run against a
    real server its Lua hook prints the run's summary as one line of JSON: every request
    answered, none faster than the endpoint's 50 ms wait."""
    io = next(c for c in bench.CASES if c.key == "io")
    assert harness.command_of(WRK) == bench.wrk_command(
        f"http://127.0.0.1:8000{io.path}", io.connections, bench.SECONDS)
    with harness.serving(CONFIGS["uvicorn-1"], log_dir=log_dir, cwd=APP.folder,
                         expect_clean=False) as server:  # uvicorn re-raises SIGTERM: exit -15
        result = harness.run(WRK, server=server, timeout=bench.SECONDS + bench.WRK_TIMEOUT + 60)
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["requests"] > 0 and not any(summary["errors"].values()), summary
    wait_us = committed()["settings"]["wait_ms"] * 1000
    assert summary["latency_us"]["p50"] >= wait_us, summary


def test_plan_is_rendered_from_the_tool() -> None:
    """The plan the page shows (plan.md, .vi.md, .zh.md) is what the tool renders from the
    configurations, cases and settings it measures with."""
    rendered = bench.plan_outputs()
    stale = [ref for ref in PLAN if harness.snippet(ref).text != rendered[Path(ref).name]]
    assert not stale, (f"{stale}: not what tools/_bench.py renders from its plan; run "
                       "`python -m tools render benchmarks`")
    assert set(rendered) == {Path(ref).name for ref in PLAN}


def test_requirements_pin_the_verified_versions() -> None:
    """requirements.txt pins the versions the suite runs with (the environment built from it)."""
    pins = dict(
        re.match(r"([\w-]+)(?:\[[\w,]+\])?==(\S+)", line).groups()
        for line in harness.snippet("benchmarks/requirements.txt").text.splitlines()
    )
    assert pins == {name: reader_version(name) for name in pins}
    assert set(pins) == {"fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "granian"}


#: Every table a generator writes, in every language (tools/_bench.py, _sweep.py,
#: _concurrency.py, _memory.py); each writes its numbers with tools/locale_numbers.py.
GENERATED_TABLES = {
    lang: [f"{name}{'' if lang == 'en' else '.' + lang}.md" for name in (
        "benchmarks/results", "load_testing/sweep", "concurrency/measured", "scaling/memory",
        "scaling/cpus")]
    for lang in ("en", "vi", "zh")
}
#: A decimal number in a table cell, outside code ("0,57", "1.16 s", "1,00x", "5003 ms").
DECIMAL_RE = re.compile(r"(?<![\w.,`])\d+([.,])\d+(?![\w.,`])")


def test_every_generated_table_writes_numbers_one_way() -> None:
    """One rule per language, from tools/locale_numbers.py: a decimal point in English and
    Chinese, a decimal comma in Vietnamese, no thousands separator anywhere."""
    from tools.locale_numbers import DECIMAL_SEPARATOR, number

    assert [number(5003.25, lang, 2) for lang in ("en", "vi", "zh")] == [
        "5003.25", "5003,25", "5003.25"]
    problems = []
    for lang, names in GENERATED_TABLES.items():
        for name in names:
            snippet = harness.snippet(name)
            for no, line in enumerate(snippet.text.splitlines(), 1):
                if not line.startswith("| "):
                    continue
                cells = re.sub(r"`[^`]*`|Python \d\S*", " ", line)  # code and versions
                for m in DECIMAL_RE.finditer(cells):
                    if m[1] != DECIMAL_SEPARATOR[lang]:
                        problems.append(f"snippets/{name}:{no}: {m[0]!r} is not written the "
                                        f"{lang} way (tools/locale_numbers.py)")
    assert not problems, "\n".join(problems)
