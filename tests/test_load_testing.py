"""docs/load_testing.md: the locustfile and the headless run, against a real server."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness
from tools import _sweep as sweep  # the sweep's measuring code (tooling, `tools measure sweep`)
from tools import loadguard

APP = harness.snippet("load_testing/main.py")  # serve.sh serves it from its folder
LOCUSTFILE = harness.snippet("load_testing/locustfile.py")
SWEEP_RUN = harness.snippet("load_testing/sweep_run.sh")  # one run of the sweep
PLAN = ("load_testing/sweep_plan.md", "load_testing/sweep_plan.vi.md",
        "load_testing/sweep_plan.zh.md")
TABLES = {"en": "load_testing/sweep.md", "vi": "load_testing/sweep.vi.md",
          "zh": "load_testing/sweep.zh.md"}


def summary_totals(output: str) -> tuple[int, int]:
    """Requests and failures of the last Aggregated line Locust printed (its final summary)."""
    found = re.findall(r"^\s*Aggregated\s+(\d+)\s+(\d+)\(", output, re.M)
    assert found, output[-3000:]
    return int(found[-1][0]), int(found[-1][1])


def csv_totals(path: Path) -> tuple[int, int]:
    rows = {r["Name"]: r for r in csv.DictReader(path.open())}
    return int(rows["Aggregated"]["Request Count"]), int(rows["Aggregated"]["Failure Count"])




def test_headless_run_makes_requests_and_none_fail(log_dir: Path) -> None:
    """The page's Locust command, for a few seconds against serve.sh: requests, no failures;
    --csv results writes results_stats.csv and three other files; the CSV never shows more
    than the printed summary (it is rewritten once a second)."""
    work = log_dir / "run"
    work.mkdir()
    shutil.copy(LOCUSTFILE.path, work)
    with harness.serving("load_testing/serve.sh", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        result = harness.run("load_testing/run.sh", server=server, cwd=work, timeout=120,
                             log_dir=log_dir)
    written = sorted(p.name for p in work.glob("results*"))
    assert "results_stats.csv" in written and len(written) == 4, written
    requests, failures = summary_totals(result.output)
    csv_requests, csv_failures = csv_totals(work / "results_stats.csv")
    assert requests > 0 and failures == 0 and csv_failures == 0, result.output[-2000:]
    assert 0 < csv_requests <= requests
    counts = {r["Name"]: int(r["Request Count"])
              for r in csv.DictReader((work / "results_stats.csv").open())}
    assert 2 < counts["/"] / counts["/work"] < 4.5, counts  # task weights 3:1


def test_failed_requests_fail_the_run(log_dir: Path) -> None:
    """Against a port where nothing listens, every request fails and Locust exits 1."""
    work = log_dir / "run"
    work.mkdir()
    shutil.copy(LOCUSTFILE.path, work)
    result = harness.run("load_testing/run.sh", ports={8000: harness.free_port()}, cwd=work,
                         timeout=120, check=False, log_dir=log_dir)
    requests, failures = summary_totals(result.output)
    assert result.returncode == 1 and requests == failures > 0


def test_run_time_counts_from_the_start_of_the_run(log_dir: Path) -> None:
    """After a start slower than the run (5 s, for a 3 s run), the run without the locustfile's
    clock hook ends before its first request and still exits 0; with the hook it lasts 3 s."""
    work = log_dir / "clock"
    work.mkdir()
    shutil.copy(LOCUSTFILE.path, work / "with_hook.py")
    text = LOCUSTFILE.path.read_text()
    hook = re.search(r"@events\.init\.add_listener\n.*?update_now\(\)\n", text, re.S)
    assert hook, "the locustfile has the clock hook"
    (work / "without_hook.py").write_text(text.replace(hook[0], ""))
    for name in ("with_hook", "without_hook"):  # a start slowed by 5 s of work (a busy CI box)
        (work / f"slow_{name}.py").write_text(
            "import time\n\nend = time.perf_counter() + 5\nwhile time.perf_counter() < end:\n"
            f"    pass\nfrom {name} import ApiUser  # noqa: E402, F401\n")
    with harness.serving("load_testing/serve.sh", log_dir=log_dir) as server:
        server.wait_for_workers(2)

        def run(name: str) -> tuple[int, list[dict]]:
            command = (f"locust -f slow_{name}.py --headless --users 5 --spawn-rate 5 "
                       f"--run-time 3s --host http://127.0.0.1:8000 --json-file {name} "
                       "--only-summary --exit-code-on-error 1")
            result = harness.run(harness.variant("load_testing/run.sh", command),
                                 server=server, cwd=work, timeout=120, check=False,
                                 log_dir=log_dir)
            return result.returncode, json.loads((work / f"{name}.json").read_text())

        with ThreadPoolExecutor(2) as pool:
            (rc_with, with_hook), (rc_without, without_hook) = pool.map(
                run, ["with_hook", "without_hook"])
    requests = [sum(e["num_requests"] for e in run) for run in (with_hook, without_hook)]
    span = (max(e["last_request_timestamp"] for e in with_hook)
            - min(e["start_time"] for e in with_hook)) if with_hook else 0
    seen = f"exit codes {rc_with}/{rc_without}, requests {requests}, span with hook {span:.1f} s"
    assert (rc_with, rc_without) == (0, 0), seen
    assert requests[1] == 0 and requests[0] > 0, seen
    assert span > 2, seen


def test_sweep_finds_where_throughput_stops_growing(log_dir: Path) -> None:
    """The sweep runs (quick: 1 and 2 workers) and writes a table that names the machine;
    the table on the page came from the same code, for 1 to 4 workers."""
    served = harness.command_of(harness.snippet("load_testing/serve.sh"))
    assert sweep.SERVER.format(workers=2, port=8000).replace("127.0.0.1", "0.0.0.0") == (
        served + " --no-control-socket")
    out = log_dir / "sweep"
    # --under-load: the suite's machine is busy, and nothing of this run is committed.
    result = subprocess.run(
        [sys.executable, "-m", "tools", "measure", "sweep", "--quick", loadguard.UNDER_LOAD_FLAG,
         "--out", str(out)], cwd=harness.ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, (f"{sweep.COMMAND} --quick: exit code {result.returncode}\n"
                                    f"{result.stdout[-2000:]}{result.stderr[-3000:]}")
    machine = loadguard.machine()
    here = (f"{machine['cpu']}, {machine['cores']} cores, {machine['memory']}, {machine['os']}, "
            f"Python {machine['python']};")
    assert here in (out / "sweep.md").read_text()
    for text, counts in (((out / "sweep.md").read_text(), [1, 2]),
                         (harness.snippet(TABLES["en"]).text, list(sweep.WORKERS))):
        assert re.match(rf"Measured on \d{{4}}-\d\d-\d\d by the sweep `{re.escape(sweep.COMMAND)}` "
                        r"runs: .+, \d+ cores, \d+ GiB, ", text), text[:300]
        rows = table_rows(text)
        assert [int(r[0]) for r in rows] == counts
        assert all(float(r[1]) > 0 and int(r[5]) == 0 for r in rows), rows
        assert re.search(r"^Throughput (stopped growing at|was still growing)", text, re.M)
    for name in ("sweep.vi.md", "sweep.zh.md"):  # the quick run wrote every language too
        assert table_rows((out / name).read_text()) == table_rows((out / "sweep.md").read_text())


def table_rows(text: str) -> list[list[str]]:
    """The table's number rows, with Vietnamese decimal commas read as points."""
    return [[re.sub(r"(\d),(\d)", r"\1.\2", cell) for cell in ln.split("|")[1:-1]]
            for ln in text.splitlines() if re.match(r"\| \d", ln)]


def test_translated_tables_hold_the_same_numbers() -> None:
    """sweep.vi.md and sweep.zh.md are the same measurement as sweep.md, in other words."""
    en = harness.snippet(TABLES["en"]).text
    for lang in ("vi", "zh"):
        text = harness.snippet(TABLES[lang]).text
        assert table_rows(text) == table_rows(en) and table_rows(en)
        assert re.findall(r"[-+]\d+%", text) == re.findall(r"[-+]\d+%", en)
        assert text != en


def test_committed_tables_are_rendered_from_their_data() -> None:
    """sweep.md, sweep.vi.md and sweep.zh.md are what the tool renders from the committed data
    (`python -m tools render sweep`)."""
    data = json.loads(harness.snippet("load_testing/sweep.data.json").text)
    files = sweep.outputs(data)
    for ref in TABLES.values():
        assert harness.snippet(ref).text == files[Path(ref).name], (
            f"snippets/{ref}: not what tools/_sweep.py renders from sweep.data.json; run "
            "`python -m tools render sweep`")


def test_sweep_plan_is_rendered_from_the_tool() -> None:
    """The plan the page shows (sweep_plan.md, .vi.md, .zh.md) is what the tool renders from
    the settings it sweeps with."""
    rendered = sweep.plan_outputs()
    stale = [ref for ref in PLAN if harness.snippet(ref).text != rendered[Path(ref).name]]
    assert not stale, (f"{stale}: not what tools/_sweep.py renders from its settings; run "
                       "`python -m tools render sweep`")
    assert set(rendered) == {Path(ref).name for ref in PLAN}


def test_one_sweep_run_is_the_locust_command_shown(log_dir: Path) -> None:
    """sweep_run.sh is the Locust command the sweep runs for each worker count; run (for 3 s
    instead of 10) against serve.sh, it makes requests, none fail, and it exits 0."""
    assert harness.command_of(SWEEP_RUN) == sweep.locust_command(
        sweep.SECONDS, "http://127.0.0.1:8000", "run")
    work = log_dir / "sweep-run"
    work.mkdir()
    shutil.copy(LOCUSTFILE.path, work)
    shorter = harness.command_of(SWEEP_RUN).replace(f"--run-time {sweep.SECONDS}s",
                                                    "--run-time 3s")
    with harness.serving("load_testing/serve.sh", log_dir=log_dir, cwd=APP.folder) as server:
        server.wait_for_workers(2)
        result = harness.run(harness.variant(SWEEP_RUN, shorter), server=server, cwd=work,
                             timeout=120, check=False, log_dir=log_dir)
    entries = json.loads((work / "run.json").read_text())
    requests = sum(e["num_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    assert result.returncode == 0 and requests > 0 and failures == 0, (
        result.returncode, requests, failures, result.output[-2000:])


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements pin every package with ==; the environment its commands run in
    is built from them alone and holds exactly those versions."""
    harness.check_reader_env("load_testing", shows=["load_testing/requirements.txt"])
