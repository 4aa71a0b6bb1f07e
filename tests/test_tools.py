"""The tooling's load guard (``tools/loadguard.py``), and the committed measurements it guards.

Every ``python -m tools measure ...`` run records the machine and the load, and refuses a busy
machine; a committed data file taken under load may not stand as a page's numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from pages import ROOT
from tools import loadguard, measure

#: A /proc/loadavg reading of a busy 2-core machine, and of a quiet one.
BUSY = "3.40 2.10 1.50 4/321 9999"
QUIET = "0.20 0.30 0.40 1/321 9999"
STAT_START = "cpu  1000 0 500 8000 10 0 5 100 0 0\n"
STAT_END = "cpu  1600 0 700 9500 10 0 5 200 0 0\n"  # 2400 ticks passed, 100 of them stolen


def test_guard_refuses_a_busy_machine() -> None:
    """A 1-minute load average above half the cores stops the run, and the message gives the
    numbers and the way to measure anyway."""
    with pytest.raises(loadguard.Busy) as refused:
        loadguard.before(loadavg=BUSY, cores=2, command="python -m tools measure benchmarks")
    message = str(refused.value)
    assert "3.40" in message and "above 1" in message and "2 cores" in message, message
    assert "python -m tools measure benchmarks --under-load" in message, message
    loadguard.before(loadavg=QUIET, cores=2)  # a quiet machine is measured


def test_measure_verb_exits_non_zero_on_a_busy_machine() -> None:
    """``python -m tools measure`` refuses before starting anything (the reading is injected,
    the machine is not loaded): exit code 3 and the numbers on stderr."""
    env = {**os.environ, loadguard.FAKE_LOADAVG_VAR: f"{os.cpu_count() + 5}.00 2.00 1.00"}
    r = subprocess.run([sys.executable, "-m", "tools", "measure", "concurrency"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "refusing to measure: the 1-minute load average is" in r.stderr, r.stderr
    assert "--under-load" in r.stderr, r.stderr


@pytest.mark.parametrize("target", sorted(measure.TARGETS))
def test_measure_help_answers_on_a_busy_machine(target: str) -> None:
    """``python -m tools measure TARGET --help`` describes the measurement and measures nothing,
    so the load guard does not stand in its way: exit code 0 on a busy machine."""
    env = {**os.environ, loadguard.FAKE_LOADAVG_VAR: f"{os.cpu_count() + 5}.00 2.00 1.00"}
    r = subprocess.run([sys.executable, "-m", "tools", "measure", target, "--help"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert r.stdout.startswith(f"usage: python -m tools measure {target} "), r.stdout[:300]
    assert "Tooling, not a snippet" in r.stdout, r.stdout[:1000]


def test_time_build_help_measures_nothing() -> None:
    """``python -m tools time-build --help`` describes the builds it times and builds nothing,
    on a busy machine too (the guard would refuse a measurement: exit code 3)."""
    env = {**os.environ, loadguard.FAKE_LOADAVG_VAR: f"{os.cpu_count() + 5}.00 2.00 1.00"}
    r = subprocess.run([sys.executable, "-m", "tools", "time-build", "--help"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Time the site builds an editor waits for" in r.stdout, r.stdout[:500]
    assert '"builds"' not in r.stdout, "it measured"


def test_under_load_marks_the_result() -> None:
    """With --under-load the busy run goes ahead, and its data says so: such a file is
    rejected as a committed result."""
    reading = loadguard.before(True, loadavg=BUSY, stat=STAT_START, cores=2)
    block = loadguard.after(reading, loadavg=QUIET, stat=STAT_END)
    assert block["under_load"] is True
    assert block["load_before"] == 3.4 and block["loadavg_before"] == [3.4, 2.1, 1.5]
    assert block["steal_percent"] == round(100 * 100 / 2400, 2)
    assert loadguard.problems(block), block


DATA_FILES = {  # the data file each measured table is rendered from, and its measure target
    "benchmarks/results.json": "benchmarks",
    "concurrency/measured.data.json": "concurrency",
    "scaling/measured.data.json": "memory",
    "load_testing/sweep.data.json": "sweep",
}


def test_every_measure_target_has_its_data_file() -> None:
    assert {f"{t.folder}/{t.data}" for t in measure.TARGETS.values()} == set(DATA_FILES)


@pytest.mark.parametrize("ref", DATA_FILES)
def test_committed_results_were_taken_on_a_quiet_machine(ref: str) -> None:
    """A page's numbers were measured with the 1-minute load average at most half the cores,
    and not with --under-load. (Files from before the guard have no steal reading: the pages
    say "steal not recorded".)"""
    data = json.loads((ROOT / "snippets" / ref).read_text("utf-8"))
    problems = loadguard.problems(data)
    assert not problems, (f"snippets/{ref}: {'; '.join(problems)}; regenerate it on a quiet "
                          f"machine with `python -m tools measure {DATA_FILES[ref]}`")


def test_one_language_build_builds_only_that_language(tmp_path) -> None:
    """HANDBOOK_LANGUAGES=vi builds the Vietnamese pages only (the editing loop of the README),
    without loading jieba's dictionary (overrides/hooks/fast_build.py: no Chinese is built);
    an unknown language is an error that names the languages there are."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HANDBOOK_LANGUAGES": "vi"}
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "--site-dir"]
    r = subprocess.run([*build, str(tmp_path / "vi")], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    site = tmp_path / "vi"
    assert (site / "vi" / "quickstart" / "index.html").is_file(), sorted(os.listdir(site))
    others = [site / "zh", site / "quickstart"]  # Chinese, and English at the root
    assert not any(p.exists() for p in others), sorted(os.listdir(site))
    assert "Prefix dict has been built" not in r.stderr, "jieba's dictionary was loaded"
    r = subprocess.run([*build, str(tmp_path / "xx")], cwd=ROOT, capture_output=True, text=True,
                       env={**env, "HANDBOOK_LANGUAGES": "xx"}, timeout=300)
    assert r.returncode != 0 and "HANDBOOK_LANGUAGES='xx': no language ['xx']" in r.stderr, r.stderr


#: A line of Python that reaches into the test suite or the tooling: an import of the harness,
#: the pages module or the tools package, or a path built to tests/ (to put it on sys.path).
REACHES_INTO = re.compile(
    r"^\s*(?:import|from)\s+(?:harness|pages|services|containers|tools)\b|[/(,]\s*[\"']tests[\"']",
    re.M)


def test_snippets_never_import_from_tests_or_tools() -> None:
    """A reader who copies a snippet can run it: no Python file under snippets/ imports the test
    harness, the pages module or the tooling (measuring scripts live in tools/)."""
    snippets = ROOT / "snippets"
    found = sorted(str(p.relative_to(snippets)) for p in snippets.rglob("*.py")
                   if REACHES_INTO.search(p.read_text("utf-8")))
    assert not found, (f"snippets/{found[0]}: imports from tests/ or tools/; a snippet is what "
                       f"a reader copies, so move it to tools/ (all: {found})")


def test_the_import_check_bites() -> None:
    """The check above sees each way a script used to reach into tests/ or tools/."""
    for line in ("import harness", "from tools.locale_numbers import number",
                 'sys.path.insert(0, str(HERE.parents[1] / "tests"))',
                 "    from pages import ROOT"):
        assert REACHES_INTO.search(line), line
    assert not REACHES_INTO.search("import httpx\nfrom fastapi import FastAPI")
