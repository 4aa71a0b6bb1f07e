"""Run the pages' claim tests once per version set and write the version grid (snippets/versions/).

    python -m tools grid                  # every set, one after another; writes grid.json
    python -m tools grid --set newest     # one set (the others keep their committed results)
    python -m tools grid --set newest --tests tests/test_x.py::test_y   # re-run some claims
    python -m tools grid --render         # only re-render the tables and notes from grid.json
    python -m tools grid --check          # exit 1 if the rendered files and grid.json disagree
    python -m tools grid --set gunicorn-23 --tests tests/test_servers.py::test_x \\
        --versions uvicorn=0.30.6,0.31.0  # bisect: the same run, one release at a time
    python -m tools grid --canary         # run newest; fail when a claim that passes on
                                          # pinned fails on newest ($GITHUB_STEP_SUMMARY)

A version set is a JSON object of exact versions that ``tests/harness.py`` (``reader_env``)
installs over every page's requirements with uv's ``--override``
(``$HANDBOOK_VERSION_OVERRIDES``); the pages and their requirements files stay on the pinned set.
A claim test is a test a page cites (``tests/pages.py``). Its outcome in a set is ``passed``,
``failed`` (with the first line of the failure), or ``not applicable``: only when the test
itself skipped with a reason starting ``not applicable:`` (the release lacks the option or the
worker class). Any other skip is recorded as ``skipped`` and shown as such, never hidden.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import re
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from tools import grid_render

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import pages  # noqa: E402

DATA = ROOT / "snippets" / "versions" / "grid.json"

#: The pages whose claim tests make the grid (at least these; more can be added).
TOPICS = ("quickstart", "servers", "configuration", "timeouts", "restarts", "proxy", "concurrency")

#: What the newest set follows: resolved from PyPI at run time, never pinned.
NEWEST = ("fastapi", "gunicorn", "uvicorn", "uvicorn-worker")

#: The version sets, in column order. "overrides" is what is installed over the pages' pins.
SETS: dict[str, dict] = {
    "pinned": {
        "why": "what every page and requirements file pins; every claim is proved on it",
        "overrides": {},
    },
    "newest": {
        "why": "today's newest FastAPI, Gunicorn, Uvicorn and uvicorn-worker on PyPI, resolved "
               "when the grid runs: what a reader who installs without pins gets",
        "overrides": None,  # resolved at run time (NEWEST)
    },
    "gunicorn-25": {
        "why": "the Gunicorn 25 line of March 2026 (25.3.0, the last 25.x) with the Uvicorn, "
               "uvicorn-worker and FastAPI of that month: a service pinned in early 2026",
        "overrides": {"gunicorn": "25.3.0", "uvicorn": "0.42.0", "uvicorn-worker": "0.4.0",
                      "fastapi": "0.135.1", "fastapi-cli": "0.0.24"},
    },
    "gunicorn-23": {
        "why": "Gunicorn 23.0.0 (August 2024) with Uvicorn 0.30.6, uvicorn-worker 0.2.0 and "
               "FastAPI 0.112.2 of the same month: the long-lived pins of many services",
        "overrides": {"gunicorn": "23.0.0", "uvicorn": "0.30.6", "uvicorn-worker": "0.2.0",
                      "fastapi": "0.112.2", "fastapi-cli": "0.0.5"},
    },
}

#: The distributions whose resolved versions the grid records for each set.
RECORDED = ("fastapi", "fastapi-cli", "starlette", "gunicorn", "uvicorn", "uvicorn-worker")

NOT_APPLICABLE = "not applicable:"


# --------------------------------------------------------------------------- claims


def claim_tests() -> list[dict]:
    """Every test the listed pages cite, with the page and the section (``##`` id) citing it
    first; one entry per test, in page order."""
    found: dict[str, dict] = {}
    for topic in TOPICS:
        page = pages.load(pages.page_path(topic, "en"))
        heads = [(no, hid) for no, level, _, hid in page.headings() if level == 2]
        for no, file, name in page.test_refs():
            test = f"tests/{file}::{name}"
            section = next((hid for hno, hid in reversed(heads) if hno < no), None)
            found.setdefault(test, {"test": test, "page": f"docs/{topic}.md", "section": section})
    return list(found.values())


# --------------------------------------------------------------------------- sets


def pypi_latest(name: str) -> str:
    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as r:
        return json.load(r)["info"]["version"]


def overrides_of(name: str) -> dict[str, str]:
    spec = SETS[name]["overrides"]
    if spec is None:
        spec = {dist: pypi_latest(dist) for dist in NEWEST}
    return dict(spec)


def resolved_versions(overrides: dict[str, str]) -> dict[str, str]:
    """What the quick start's reader environment holds under these overrides (built with uv)."""
    import harness

    env = {**os.environ, harness.VERSION_OVERRIDES_VAR: json.dumps(overrides)}
    code = ("import json, harness; e = harness.reader_env('quickstart'); "
            f"print(json.dumps({{n: e.version(n) for n in {list(RECORDED)!r}}}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "tests", env=env,
                       capture_output=True, text=True, timeout=900)
    if r.returncode:
        raise SystemExit(f"grid: cannot build the reader environment for {overrides}:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- running


def run_tests(tests: list[str], overrides: dict[str, str], label: str, workers: int) -> Path:
    """Run ``tests`` with pytest under ``overrides``; return the JUnit XML report."""
    out = Path(f"/tmp/grid-{label}.xml")
    cmd = [sys.executable, "-m", "pytest", *tests, "-n", str(workers), "-p", "no:cacheprovider",
           f"--basetemp=/tmp/pt-grid-{label}", f"--junitxml={out}", "-q", "-rN", "--no-header"]
    env = {**os.environ, "HANDBOOK_VERSION_OVERRIDES": json.dumps(overrides)}
    shown = [a for a in cmd[1:] if "::" not in a]
    print(f"grid: {label}: {len(tests)} tests, {' '.join(shown)}\n"
          f"      with {env['HANDBOOK_VERSION_OVERRIDES']}", flush=True)
    out.unlink(missing_ok=True)
    r = subprocess.run(cmd, cwd=ROOT, env=env)
    if not out.is_file():
        raise SystemExit(f"grid: {label}: pytest wrote no report (exit code {r.returncode})")
    return out


def _one_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "[gw")):
            line = re.sub(r"\s+", " ", line.removeprefix("Failed: ").removeprefix("E "))
            return line[:200]
    return ""


def outcomes(report: Path) -> dict[str, dict]:
    """``tests/test_x.py::name`` -> {"outcome", "reason"}, parametrised cases folded into one:
    failed if any case failed, passed if any passed and none failed, else the skip."""
    cases: dict[str, list[tuple[str, str]]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        param = re.search(r"\[(.*)\]$", case.get("name", ""))
        name = re.sub(r"\[.*\]$", "", case.get("name", ""))
        key = f"{module}.py::{name}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            line = _one_line(bad.get("message")) or _one_line(bad.text)
            # a parametrised case says which one failed: "[gunicorn asgi worker] Assertion..."
            item = ("failed", f"[{param[1]}] {line}" if param else line)
        elif skip is not None:
            message = (skip.get("message") or "").strip()
            message = re.sub(r"^Skipped: ", "", message)
            if message.startswith(NOT_APPLICABLE):
                item = ("not applicable", message[len(NOT_APPLICABLE):].strip())
            else:
                item = ("skipped", _one_line(message))
        else:
            item = ("passed", "")
        cases.setdefault(key, []).append(item)
    result = {}
    for key, items in cases.items():
        for wanted in ("failed", "passed", "not applicable", "skipped"):
            hit = [i for i in items if i[0] == wanted]
            if hit:
                reason = hit[0][1]
                if wanted == "failed" and len(hit) > 1:
                    reason += f" (and {len(hit) - 1} more failed case(s))"
                result[key] = {"outcome": wanted, "reason": reason} if wanted != "passed" \
                    else {"outcome": "passed"}
                break
    return result


def load_data() -> dict:
    if DATA.is_file():
        return json.loads(DATA.read_text("utf-8"))
    return {"sets": [], "claims": [], "bisections": []}


def save_data(data: dict) -> None:
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"grid: wrote {DATA.relative_to(ROOT)}")


def run_set(name: str, claims: list[dict], workers: int) -> tuple[dict, dict]:
    overrides = overrides_of(name)
    resolved = resolved_versions(overrides)
    found = outcomes(run_tests([c["test"] for c in claims], overrides, name, workers))
    results = {c["test"]: found.get(c["test"], {"outcome": "not run"}) for c in claims}
    entry = {"name": name, "why": SETS[name]["why"], "overrides": overrides,
             "resolved": resolved, "run": datetime.date.today().isoformat()}
    Path(f"/tmp/grid-set-{name}.json").write_text(json.dumps([entry, results], indent=1))
    return entry, results


def merge(data: dict, claims: list[dict], entry: dict, results: dict) -> dict:
    order = list(SETS)
    sets = {s["name"]: s for s in data.get("sets", [])}
    sets[entry["name"]] = entry
    data["sets"] = [sets[n] for n in order if n in sets]
    old = {c["test"]: c for c in data.get("claims", [])}
    merged = []
    for c in claims:
        row = {**c, "results": dict(old.get(c["test"], {}).get("results", {}))}
        if c["test"] in results:  # a partial run (--tests) leaves the other results as they are
            row["results"][entry["name"]] = results[c["test"]]
        row["results"] = {n: row["results"][n] for n in order if n in row["results"]}
        merged.append(row)
    data["claims"] = merged
    data.setdefault("bisections", [])
    return data


# --------------------------------------------------------------------------- bisecting


def bisect(base: str, tests: list[str], dist: str, versions: list[str], workers: int) -> dict:
    """Run ``tests`` on set ``base`` with ``dist`` at each of ``versions`` (oldest first) and
    report the first release where the outcome differs from the first one."""
    seen = []
    for version in versions:
        overrides = {**overrides_of(base), dist: version}
        found = outcomes(run_tests(tests, overrides, f"bisect-{dist}-{version}", workers))
        row = {t: found.get(t, {"outcome": "not run"}) for t in tests}
        seen.append({"version": version, "results": row})
        print(f"grid: {dist}=={version}: " + ", ".join(f"{t.split('::')[1]} {r['outcome']}"
                                                      for t, r in row.items()), flush=True)
    changes = []
    for t in tests:
        for before, after in zip(seen, seen[1:], strict=False):
            if before["results"][t]["outcome"] != after["results"][t]["outcome"]:
                changes.append({"test": t, "dist": dist, "last_before": before["version"],
                                "changed_in": after["version"],
                                "before": before["results"][t]["outcome"],
                                "after": after["results"][t]["outcome"]})
    return {"base": base, "dist": dist, "versions": versions, "tests": tests,
            "changes": changes, "run": datetime.date.today().isoformat()}


# --------------------------------------------------------------------------- canary


def canary(data: dict, newest: dict, results: dict) -> tuple[int, str]:
    """The claims that pass on the pinned set (committed grid) and fail on newest, as a job
    summary in Markdown; exit code 1 when there is at least one."""
    pinned = {s["name"]: s for s in data["sets"]}.get("pinned", {})
    broke = [c for c in data["claims"]
             if c["results"].get("pinned", {}).get("outcome") == "passed"
             and results.get(c["test"], {}).get("outcome") == "failed"]
    changed = {d: (pinned.get("resolved", {}).get(d), v) for d, v in newest["resolved"].items()
               if pinned.get("resolved", {}).get(d) != v}
    lines = ["# Handbook canary: the newest releases against the pages' claims", ""]
    lines.append("Releases that differ from the pinned set: " + (", ".join(
        f"{d} {a} → {b}" for d, (a, b) in changed.items()) or "none") + ".")
    lines.append("")
    if broke:
        lines += [f"**{len(broke)} claim(s) that hold on the pinned set fail on the newest "
                  "releases.**", "", "| page | section | test | failure |", "|---|---|---|---|"]
        for c in broke:
            reason = results[c["test"]].get("reason", "").replace("|", "\\|")
            lines.append(f"| {c['page']} | #{c['section']} | `{c['test']}` | {reason} |")
    else:
        lines.append("Every claim that holds on the pinned set holds on the newest releases.")
    counts = {}
    for r in results.values():
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    lines += ["", "Newest column: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
              + "."]
    return (1 if broke else 0), "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools grid", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", choices=list(SETS), dest="sets")
    ap.add_argument("--render", action="store_true", help="only render from grid.json")
    ap.add_argument("--check", action="store_true", help="rendered files match grid.json?")
    ap.add_argument("--canary", action="store_true")
    ap.add_argument("--tests", nargs="+", help="bisect: the tests to run")
    ap.add_argument("--versions", help="bisect: dist=v1,v2,... (oldest first)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    if args.check:
        stale = grid_render.stale(load_data())
        for path in stale:
            print(f"grid: {path} does not match snippets/versions/grid.json; "
                  "run `python -m tools grid --render`", file=sys.stderr)
        return 1 if stale else 0
    data = load_data()
    if args.render:
        grid_render.write(data)
        return 0
    if args.versions:
        dist, _, listed = args.versions.partition("=")
        base = (args.sets or ["pinned"])[0]
        found = bisect(base, args.tests or [], dist, listed.split(","), args.workers)
        print(json.dumps(found["changes"], indent=1))
        with open(ROOT / ".cache" / "grid.lock", "w") as lock:  # another grid run may be saving
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = load_data()
            data.setdefault("bisections", [])
            same = (base, dist, found["tests"])
            data["bisections"] = [b for b in data["bisections"]
                                  if (b["base"], b["dist"], b["tests"]) != same]
            data["bisections"].append(found)
            save_data(data)
        grid_render.write(data)
        return 0
    claims = claim_tests()
    chosen = [c for c in claims if not args.tests or c["test"] in args.tests]
    if args.tests and len(chosen) != len(args.tests):
        print(f"grid: not claim tests of the grid's pages: "
              f"{sorted(set(args.tests) - {c['test'] for c in chosen})}", file=sys.stderr)
        return 2
    if args.canary:
        entry, results = run_set("newest", claims, args.workers)
        code, summary = canary(data, entry, results)
        target = os.environ.get("GITHUB_STEP_SUMMARY")
        if target:
            with open(target, "a", encoding="utf-8") as f:
                f.write(summary)
        print(summary)
        with open(ROOT / ".cache" / "grid.lock", "w") as lock:  # another grid run may be saving
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = merge(load_data(), claims, entry, results)  # what others saved meanwhile
            save_data(data)
        grid_render.write(data)
        return code
    for name in args.sets or list(SETS):
        entry, results = run_set(name, chosen, args.workers)
        with open(ROOT / ".cache" / "grid.lock", "w") as lock:  # another grid run may be saving
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = merge(load_data(), claims, entry, results)
            save_data(data)  # after each set: a long run keeps what it has
    grid_render.write(data)
    return 0
