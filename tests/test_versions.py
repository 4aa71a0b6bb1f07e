"""The version grid (docs/versions.md): version sets over the pages' pins, outcomes read from
the test report, tables and notes generated from the data, the canary, the workflows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import harness
import pages
from pages import ROOT

sys.path.insert(0, str(ROOT))
from tools import grid, grid_render  # noqa: E402

#: The grid's commands, as docs/versions.md shows them.
COMMANDS = ("versions/grid.sh", "versions/bisect.sh", "versions/check.sh", "versions/canary.sh")
#: The generated files: the Versions page's tables and data, and each page's note.
GENERATED = (
    "versions/grid.json", "versions/grid.md", "versions/grid.vi.md", "versions/grid.zh.md",
    "versions/notes/concurrency.md", "versions/notes/concurrency.vi.md",
    "versions/notes/concurrency.zh.md",
    "versions/notes/configuration.md", "versions/notes/configuration.vi.md",
    "versions/notes/configuration.zh.md",
    "versions/notes/proxy.md", "versions/notes/proxy.vi.md", "versions/notes/proxy.zh.md",
    "versions/notes/quickstart.md", "versions/notes/quickstart.vi.md",
    "versions/notes/quickstart.zh.md",
    "versions/notes/restarts.md", "versions/notes/restarts.vi.md",
    "versions/notes/restarts.zh.md",
    "versions/notes/servers.md", "versions/notes/servers.vi.md", "versions/notes/servers.zh.md",
    "versions/notes/timeouts.md", "versions/notes/timeouts.vi.md",
    "versions/notes/timeouts.zh.md",
)
OLD = {"gunicorn": "23.0.0", "uvicorn": "0.30.6", "uvicorn-worker": "0.2.0",
       "fastapi": "0.112.2", "fastapi-cli": "0.0.5"}


def test_a_version_set_is_installed_over_the_page_requirements(monkeypatch) -> None:
    """A set's releases replace the page's pins in its reader environment (extras kept), the
    requirements file is untouched, and the environment is a different one from the pinned."""
    requirements = harness.snippet("quickstart/requirements.txt").path
    before = requirements.read_text("utf-8")
    pinned = harness.reader_env("quickstart")
    monkeypatch.setenv(harness.VERSION_OVERRIDES_VAR, json.dumps(OLD))
    old = harness.reader_env("quickstart")
    assert old.path != pinned.path, "the overrides are not part of the environment's cache key"
    assert {name: old.version(name) for name in OLD} == OLD, old.describe()
    assert old.version("uvloop"), "uvicorn[standard]'s extras were dropped by the override"
    assert requirements.read_text("utf-8") == before
    assert harness.check_reader_env("quickstart", ["quickstart/requirements.txt"])["gunicorn"] \
        == "23.0.0"


def test_a_worker_class_or_option_the_release_lacks_is_not_applicable(monkeypatch) -> None:
    """On a set whose Gunicorn has no ``asgi`` worker class, a test running a command that
    names it skips itself as "not applicable", saying why; on the pinned set it runs."""
    snip = harness.snippet("quickstart/gunicorn_asgi_worker.sh")
    command = harness.command_of(snip)
    assert harness.not_applicable(command, snip, harness.reader_env("quickstart")) is None
    monkeypatch.setenv(harness.VERSION_OVERRIDES_VAR, json.dumps(OLD))
    reason = harness.not_applicable(command, snip, harness.reader_env("quickstart"))
    assert reason == "gunicorn 23.0.0 has no asgi worker class"
    exported = harness.snippet("configuration/reviewed_line.sh:asgi")  # in GUNICORN_CMD_ARGS
    assert harness.not_applicable(harness.command_of(exported), exported,
                                  harness.reader_env("quickstart")) == reason
    uvicorn = harness.snippet("quickstart/uvicorn_workers.sh")
    assert harness.not_applicable(harness.command_of(uvicorn), uvicorn,
                                  harness.reader_env("quickstart")) is None


def test_outcomes_are_read_from_the_test_report(tmp_path) -> None:
    """Passed, failed with its first line, "not applicable" only from the test's own skip
    reason, any other skip kept as a skip, and parametrised cases folded into one test."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_sample.py").write_text(textwrap.dedent('''
        import pytest

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2, "the worker was not replaced"

        def test_not_in_this_release():
            pytest.skip("not applicable: gunicorn 23.0.0 has no asgi worker class")

        def test_skipped_for_another_reason():
            pytest.skip("nginx is not installed")

        @pytest.mark.parametrize("n", [1, 2])
        def test_one_case_fails(n):
            assert n == 1, f"case {n} failed"
    '''))
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # not the outer run's
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                    "-q", f"--junitxml={report}", "tests/test_sample.py"],
                   cwd=tmp_path, capture_output=True, timeout=120, env=env)
    found = grid.outcomes(report)
    name = "tests/test_sample.py::"
    assert found[name + "test_passes"] == {"outcome": "passed"}
    assert found[name + "test_fails"]["outcome"] == "failed"
    assert "the worker was not replaced" in found[name + "test_fails"]["reason"]
    assert found[name + "test_not_in_this_release"] == {
        "outcome": "not applicable", "reason": "gunicorn 23.0.0 has no asgi worker class"}
    assert found[name + "test_skipped_for_another_reason"]["outcome"] == "skipped"
    assert found[name + "test_one_case_fails"]["outcome"] == "failed"
    assert found[name + "test_one_case_fails"]["reason"].startswith("[2] "), "names the case"
    assert "case 2 failed" in found[name + "test_one_case_fails"]["reason"]


def test_grid_covers_every_claim_of_the_pages_on_every_set() -> None:
    """grid.json has a result for every test the listed pages cite, on each of the four sets,
    and records the releases each set resolved to."""
    data = json.loads(harness.snippet("versions/grid.json").text)
    assert [s["name"] for s in data["sets"]] == list(grid.SETS)
    for s in data["sets"]:
        assert set(grid.NEWEST) <= set(s["resolved"]), s["name"]
    cited = {c["test"] for c in grid.claim_tests()}
    recorded = {c["test"]: c["results"] for c in data["claims"]}
    missing = sorted(cited - set(recorded))
    assert not missing, f"cited by the pages but not in the grid: {missing}"
    absent = {t: sorted(set(grid.SETS) - set(r)) for t, r in recorded.items()
              if set(r) != set(grid.SETS)}
    assert not absent, f"tests without a result for some set: {absent}"


def test_tables_and_notes_match_the_data() -> None:
    """The Versions page's tables and every page's note are what grid.json renders to, each
    page includes its note in every language, and a changed outcome makes them stale."""
    harness.run("versions/check.sh", cwd=ROOT, timeout=120)
    data = json.loads(harness.snippet("versions/grid.json").text)
    for name in GENERATED:
        assert harness.snippet(name).path.is_file(), name
    for topic in grid.TOPICS:
        for lang in pages.LANGS:
            suffix = "" if lang == "en" else f".{lang}"
            page = pages.load(pages.page_path(topic, lang))
            wanted = f"versions/notes/{topic}{suffix}.md"
            assert wanted in [i.file for i in page.includes()], f"{page.rel} lacks {wanted}"
    claim = data["claims"][0]
    claim["results"]["pinned"] = {"outcome": "failed", "reason": "changed on purpose"}
    assert grid_render.stale(data), "a changed outcome did not change the rendered files"


def _data(outcome_on_pinned: str) -> dict:
    return {
        "sets": [{"name": "pinned", "resolved": {"uvicorn": "0.54.0", "gunicorn": "27.0.1"}}],
        "claims": [{"test": "tests/test_restarts.py::test_ttin_adds_and_ttou_removes_a_worker",
                    "page": "docs/restarts.md", "section": "signals",
                    "results": {"pinned": {"outcome": outcome_on_pinned}}}],
    }


def test_canary_fails_and_names_the_page_when_a_pinned_claim_breaks() -> None:
    """A claim that passes on the pinned set and fails on the newest releases fails the canary;
    its summary names the page, the section, the test, the failure and the changed releases."""
    newest = {"resolved": {"uvicorn": "0.55.0", "gunicorn": "27.0.1"}}
    results = {"tests/test_restarts.py::test_ttin_adds_and_ttou_removes_a_worker":
               {"outcome": "failed", "reason": "3 workers, not 2"}}
    code, summary = grid.canary(_data("passed"), newest, results)
    assert code == 1
    for part in ("docs/restarts.md", "#signals", "test_ttin_adds_and_ttou_removes_a_worker",
                 "3 workers, not 2", "uvicorn 0.54.0 → 0.55.0"):
        assert part in summary, f"{part!r} missing from the summary:\n{summary}"
    assert "gunicorn" not in summary.split("Releases that differ")[1].splitlines()[0]
    code, _ = grid.canary(_data("failed"), newest, results)
    assert code == 0, "a claim that already failed on the pinned set is no regression"


def test_workflows_are_valid() -> None:
    """Every workflow, the canary's included, passes the GitHub Actions workflow schema, and the
    canary runs on a weekly schedule and on demand with the command the page shows."""
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert ROOT / ".github/workflows/canary.yml" in workflows
    r = subprocess.run([str(harness.Path(sys.executable).parent / "check-jsonschema"),
                        "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    canary = (ROOT / ".github/workflows/canary.yml").read_text("utf-8")
    assert "schedule:" in canary and "workflow_dispatch:" in canary
    command = harness.command_of(harness.snippet("versions/canary.sh")).removeprefix(".venv/bin/")
    assert command in canary, f"canary.yml does not run {command!r}"


@pytest.mark.parametrize("ref", COMMANDS)
def test_commands_name_the_tool(ref: str) -> None:
    """Each command on the page runs the grid verb of the tooling entry point."""
    assert harness.command_of(harness.snippet(ref)).startswith(".venv/bin/python -m tools grid")
