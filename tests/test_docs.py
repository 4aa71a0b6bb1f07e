"""The snippet pipeline and the three languages, checked page by page and snippet by snippet.

Rules (each failure names the file and line):
* a fence in a page holds only ``--8<--`` include lines; code lives in ``snippets/``;
* an include names a snippet file (and section) that exists; outside a fence, only
  Markdown fragments are included;
* prose carries no command in inline code;
* relative links and their anchors resolve; every ``tests/test_x.py::name`` a page
  cites is a real test;
* every page exists in en, vi and zh; translations include the same snippets and
  have the same heading anchors as the English page, and are stamped fresh;
* every snippet is included by a page and exercised by a topic test;
* every Python snippet passes ruff and runs (with pytest-examples).

Per-snippet settings for the Python run live in ``PYTHON_SNIPPETS`` below, and nowhere else.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from unittest import mock

import pytest
from pytest_examples import CodeExample, EvalExample

import pages
from pages import LANGS, ROOT, SNIPPETS, TESTS, TRANSLATIONS
from tools import snippets as addresses

ALL_PAGES = pages.all_pages()
TOPICS = pages.topics()
PAGE_IDS = [p.rel for p in ALL_PAGES]

#: How each Python snippet is run, when it needs more than the default (imported as a module
#: named ``snippet_<name>``, with its own folder on ``sys.path``). One place for all of them.
#: Keys: "globals" (extra module globals), "env" (environment variables set while it runs).
PYTHON_SNIPPETS: dict[str, dict] = {
    # Importing locust monkey-patches the whole process with gevent unless told not to.
    "load_testing/locustfile.py": {"env": {"LOCUST_SKIP_MONKEY_PATCH": "1"}},
    # DRF reads Django's settings at import time; the servers get them from asgi.py.
    "django/views.py": {"env": {"DJANGO_SETTINGS_MODULE": "settings"}},
    "django/urls.py": {"env": {"DJANGO_SETTINGS_MODULE": "settings"}},
}

#: Snippet kinds that a topic test need not name: they are exercised by the site build and
#: the browser test (diagrams render) rather than run.
EXERCISED_BY_THE_SITE = {".mmd"}

RUFF_RULES = ["E", "F", "W", "I", "UP", "B", "ASYNC"]


def _fail(errors: list[str]) -> None:
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


# --------------------------------------------------------------------------- per page


@pytest.mark.parametrize("page", ALL_PAGES, ids=PAGE_IDS)
def test_fences_hold_only_includes(page: pages.Page) -> None:
    errors = []
    for start, _info, body in page.fences():
        code = [(no, ln) for no, ln in body if ln.strip() and not pages.INCLUDE_RE.match(ln)]
        if code:
            no, ln = code[0]
            errors.append(
                f"{page.at(no)}: inline code in a fence ({ln.strip()[:60]!r}); move it to a file "
                f'under snippets/{page.topic}/ and write --8<-- "{page.topic}/<file>" instead'
            )
        elif not any(ln.strip() for _, ln in body):
            errors.append(f"{page.at(start)}: empty fence")
    _fail(errors)


ANNOTATION_RE = re.compile(r"\((\d+)\)!")


@pytest.mark.parametrize("page", ALL_PAGES, ids=PAGE_IDS)
def test_code_annotations_have_their_notes(page: pages.Page) -> None:
    """A snippet line ending in a ``(N)!`` comment is a numbered code annotation: the fence
    that includes it is followed, after one blank line, by the notes 1..N (in the page's
    language), or Material shows the marker as a bare comment."""
    errors = []
    for start, _info, body in page.fences():
        markers = []
        for _no, line in body:
            m = pages.INCLUDE_RE.match(line)
            if m and (SNIPPETS / m["target"].split(":", 1)[0]).is_file():
                text = (SNIPPETS / m["target"].split(":", 1)[0]).read_text("utf-8")
                markers += [int(n) for n in ANNOTATION_RE.findall(text)]
        if not markers:
            continue
        end = (body[-1][0] if body else start) + 1  # the closing fence
        after = page.lines[end: end + 1 + len(markers) * 4]
        shared = [m for ln in after[:2] if (m := pages.INCLUDE_RE.match(ln))]
        if shared and shared[0]["target"].endswith(".md"):  # notes kept in a .md fragment
            after = (SNIPPETS / shared[0]["target"]).read_text("utf-8").splitlines()
        notes = [int(m[1]) for ln in after if (m := re.match(r"\s*(\d+)\. \S", ln))]
        expected = list(range(1, max(markers) + 1))
        if sorted(markers) != expected or notes[: len(expected)] != expected:
            errors.append(f"{page.at(start)}: the snippet marks annotations {sorted(markers)}; "
                          f"after the fence, write one blank line and the notes 1..{max(markers)}"
                          f" (found notes {notes})")
    _fail(errors)


@pytest.mark.parametrize("page", ALL_PAGES, ids=PAGE_IDS)
def test_includes_resolve(page: pages.Page) -> None:
    errors = []
    for inc in page.includes():
        path = SNIPPETS / inc.file
        if not path.is_file():
            errors.append(f"{page.at(inc.line)}: missing snippet snippets/{inc.file}")
            continue
        if inc.section and inc.section not in pages.section_names(path):
            errors.append(
                f"{page.at(inc.line)}: snippets/{inc.file} has no section {inc.section!r} "
                f"(sections: {sorted(pages.section_names(path)) or 'none'})"
            )
        if not inc.in_fence and path.suffix != ".md":
            errors.append(
                f"{page.at(inc.line)}: snippets/{inc.file} is included outside a fence; "
                "only .md fragments may be (put code includes inside a ``` fence)"
            )
    _fail(errors)


@pytest.mark.parametrize("page", ALL_PAGES, ids=PAGE_IDS)
def test_no_command_in_inline_code(page: pages.Page) -> None:
    errors = [
        f"{page.at(no)}: command in inline code `{m['code'][:60]}`; "
        "make it a snippet and include it"
        for no, line in page.prose_lines()
        for m in pages.INLINE_COMMAND_RE.finditer(line)
    ]
    _fail(errors)


@pytest.mark.parametrize("page", ALL_PAGES, ids=PAGE_IDS)
def test_links_resolve(page: pages.Page) -> None:
    errors = []
    for no, target in page.links():
        if re.match(r"^[a-z]+:", target) or target.startswith("/"):
            continue  # external, or absolute (mkdocs --strict rejects those)
        file, _, anchor = target.partition("#")
        if file:
            dest = (page.path.parent / file).resolve()
            if not file.endswith(".md") or not dest.is_file():
                errors.append(f"{page.at(no)}: broken link {target!r} (no page {file})")
                continue
            dest_page = pages.load(pages.page_path(pages.page_topic(dest), page.lang))
        else:
            dest_page = page
        if anchor and anchor not in dest_page.anchors() + dest_page.fragment_anchors():
            errors.append(
                f"{page.at(no)}: broken link {target!r}: {dest_page.rel} has no #{anchor}"
            )
    _fail(errors)


@pytest.mark.parametrize("page", ALL_PAGES, ids=PAGE_IDS)
def test_cited_tests_exist(page: pages.Page) -> None:
    errors = []
    for no, file, name in page.test_refs():
        path = TESTS / file
        if not path.is_file():
            errors.append(f"{page.at(no)}: cites tests/{file}, which does not exist")
        elif not re.search(rf"^\s*(async\s+)?def {name}\(", path.read_text("utf-8"), re.M):
            errors.append(f"{page.at(no)}: cites tests/{file}::{name}, which is not a test there")
    _fail(errors)


# --------------------------------------------------------------------------- per topic


#: Han characters and CJK punctuation: a line break between two of them shows as a space.
CJK = "\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\uff00-\uffef"
CJK_BREAK_RE = re.compile(f"[{CJK}]\n[ \t]*[{CJK}]")
ZH_TEXTS = [p for p in ALL_PAGES if p.lang == "zh"] + sorted(SNIPPETS.rglob("*.zh.md"))


@pytest.mark.parametrize("page", ZH_TEXTS, ids=lambda p: getattr(p, "rel", None) or
                         str(p.relative_to(ROOT)))
def test_no_line_break_between_chinese_characters(page: pages.Page | Path) -> None:
    """A browser turns a line break inside a paragraph into a space, which Chinese never has:
    "共用这个\n线程" reads as "共用这个 线程". Write each Chinese paragraph on one line."""
    if isinstance(page, Path):
        rel, lines = str(page.relative_to(ROOT)), page.read_text("utf-8").splitlines()
    else:
        rel, lines = page.rel, page.lines
    fenced, errors = False, []
    for no, (line, nxt) in enumerate(zip(lines, lines[1:] + [""], strict=True), 1):
        if re.match(r"\s*(```|~~~)", line):
            fenced = not fenced
        elif not fenced and CJK_BREAK_RE.search(f"{line}\n{nxt}"):
            errors.append(f"{rel}:{no}: line break between Chinese characters "
                          f"({line[-8:]!r} / {nxt.strip()[:8]!r}); join the two lines")
    _fail(errors)


@pytest.mark.parametrize("topic", TOPICS)
def test_page_exists_in_every_language(topic: str) -> None:
    missing = [str(pages.page_path(topic, lang).relative_to(ROOT)) for lang in LANGS]
    missing = [m for m in missing if not (ROOT / m).is_file()]
    _fail([f"{m}:1: missing page (every page exists in {', '.join(LANGS)})" for m in missing])


@pytest.mark.parametrize("lang", TRANSLATIONS)
@pytest.mark.parametrize("topic", TOPICS)
def test_translation_matches_english(topic: str, lang: str) -> None:
    en_path, tr_path = pages.page_path(topic, "en"), pages.page_path(topic, lang)
    if not (en_path.is_file() and tr_path.is_file()):
        pytest.fail(
            f"{tr_path.relative_to(ROOT)}: page pair incomplete; see test_page_exists",
            pytrace=False,
        )
    en, tr = pages.load(en_path), pages.load(tr_path)
    errors = []

    en_inc, tr_inc = [i.shared_name for i in en.includes()], [i.shared_name for i in tr.includes()]
    if en_inc != tr_inc:
        line = _first_difference_line(en.includes(), tr.includes())
        errors.append(
            f"{tr.at(line)}: includes differ from {en.rel}\n"
            f"    {en.rel}: {en_inc}\n    {tr.rel}: {tr_inc}"
        )
    en_anchors, tr_anchors = en.anchors(), tr.anchors()
    if en_anchors != tr_anchors:
        line = next(
            (h[0] for h, a in zip([h for h in tr.headings() if h[1] > 1], tr_anchors, strict=False)
             if a not in en_anchors),
            1,
        )
        errors.append(
            f"{tr.at(line)}: heading anchors differ from {en.rel} (give every heading "
            "an explicit { #id } equal to the English one)\n"
            f"    {en.rel}: {en_anchors}\n    {tr.rel}: {tr_anchors}"
        )
    untagged = [h for h in tr.headings() if h[1] > 1 and not h[3]]
    if untagged:
        errors.append(
            f"{tr.at(untagged[0][0])}: heading {untagged[0][2]!r} has no explicit {{ #id }}"
        )

    line, recorded = tr.source_hash()
    current = pages.english_hash(topic)
    if recorded is None:
        errors.append(
            f"{tr.at(1)}: no source_hash front matter; after translating run: "
            f"python tests/pages.py stamp {tr.rel}"
        )
    elif recorded != current:
        errors.append(
            f"{tr.at(line)}: stale translation: {en.rel} changed since it was translated "
            f"(source_hash {recorded}, English is now {current}). "
            "Update the translation, then run: "
            f"python tests/pages.py stamp {tr.rel}"
        )
    _fail(errors)


def _first_difference_line(a: list[pages.Include], b: list[pages.Include]) -> int:
    for x, y in zip(a, b, strict=False):
        if x.shared_name != y.shared_name:
            return y.line
    return b[min(len(a), len(b)) - 1].line if b and len(b) > len(a) else (b[-1].line if b else 1)


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if p.lang == "en"], ids=lambda p: p.rel)
def test_english_headings_have_ids(page: pages.Page) -> None:
    untagged = [h for h in page.headings() if h[1] > 1 and not h[3]]
    _fail([f"{page.at(h[0])}: heading {h[2]!r} has no explicit {{ #id }}" for h in untagged])


# --------------------------------------------------------------------------- snippets

SNIPPET_FILES = pages.snippet_files()
SNIPPET_IDS = [str(p.relative_to(SNIPPETS)) for p in SNIPPET_FILES]


@pytest.mark.parametrize("path", SNIPPET_FILES, ids=SNIPPET_IDS)
def test_snippet_is_included_by_a_page(path: Path) -> None:
    name = str(path.relative_to(SNIPPETS))
    shared = addresses.shared_file(name)
    included = {i.file for p in ALL_PAGES for i in p.includes()}
    included |= {addresses.shared_file(f) for f in included}
    if name not in included and shared not in included:
        pytest.fail(
            f"snippets/{name}:1: included by no page; include it or delete it", pytrace=False
        )


@pytest.mark.parametrize("path", SNIPPET_FILES, ids=SNIPPET_IDS)
def test_snippet_is_exercised_by_a_test(path: Path) -> None:
    if path.suffix in EXERCISED_BY_THE_SITE:
        return
    name = str(path.relative_to(SNIPPETS))
    for test in TESTS.glob("test_*.py"):
        if test.name != "test_docs.py" and re.search(
            rf"[\"']{re.escape(name)}(:[\w-]+)?[\"']", test.read_text("utf-8")
        ):
            return
    pytest.fail(
        f"snippets/{name}:1: no test exercises this snippet; "
        f"name it in tests/test_{path.parent.name}.py",
        pytrace=False,
    )


@pytest.mark.parametrize("path", [p for p in SNIPPET_FILES if p.suffix == ".sh"],
                         ids=lambda p: str(p.relative_to(SNIPPETS)))
def test_shell_snippet_parses(path: Path) -> None:
    import subprocess

    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=10)
    if r.returncode:
        pytest.fail(
            f"snippets/{path.relative_to(SNIPPETS)}: bash -n failed:\n{r.stderr}", pytrace=False
        )


PY_SNIPPETS = [p for p in SNIPPET_FILES if p.suffix == ".py"]


@pytest.mark.parametrize(
    "path", PY_SNIPPETS, ids=[str(p.relative_to(SNIPPETS)) for p in PY_SNIPPETS]
)
def test_python_snippet_lints_and_runs(path: Path, eval_example: EvalExample) -> None:
    name = str(path.relative_to(SNIPPETS))
    settings = PYTHON_SNIPPETS.get(name, {})
    example = CodeExample.create(path.read_text("utf-8"), path=path.relative_to(ROOT))
    eval_example.set_config(target_version="py312", ruff_line_length=100, ruff_select=RUFF_RULES)
    eval_example.lint_ruff(example)
    module_name = "snippet_" + re.sub(r"\W", "_", name[: -len(".py")])
    folder = str(path.parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        with mock.patch.dict(os.environ, settings.get("env", {})):
            eval_example.run(
                example,
                module_globals={
                    "__name__": module_name,
                    "__file__": str(path),
                    **settings.get("globals", {}),
                },
            )
    finally:
        sys.path.remove(folder)
        for mod in set(sys.modules) - before:  # sibling modules a snippet imported
            if getattr(sys.modules[mod], "__file__", "") and str(
                sys.modules[mod].__file__
            ).startswith(folder):
                del sys.modules[mod]


# --------------------------------------------------------------------------- lint

#: Linted as a whole with the project's ruff settings (pyproject.toml). The rest of tests/ is
#: to join once its remaining findings are fixed (the README lists how to see them).
RUFF_CLEAN = (".",)  # the whole repository: tests, tooling, snippets and hooks


def test_ruff_passes_on_the_whole_repository() -> None:
    """The project's ruff settings (pyproject.toml) hold for every Python file here."""
    import subprocess

    ruff = Path(sys.executable).parent / "ruff"
    r = subprocess.run([str(ruff), "check", "--output-format", "concise", *RUFF_CLEAN],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    if r.returncode:
        pytest.fail(f"ruff check {' '.join(RUFF_CLEAN)}: exit code {r.returncode}\n"
                    f"{r.stdout[-4000:]}{r.stderr[-2000:]}", pytrace=False)


def _fixed_waits(path: Path) -> list[str]:
    """``time.sleep`` outside a client's loop, and loops that wait against a deadline of their
    own, in one test file: ``file:line: what``."""
    import ast

    tree = ast.parse(path.read_text("utf-8"), str(path))
    rel = path.relative_to(ROOT)
    found: list[str] = []

    def is_sleep(node: ast.AST) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sleep" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "time")

    def visit(node: ast.AST, in_loop: bool, depth: int) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            depth += 1
            # A function inside a test is a client's behaviour (it runs in a thread or a loop).
            in_loop = depth > 1
        if isinstance(node, ast.While):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if "deadline" in names and any(is_sleep(n) for n in ast.walk(node)):
                found.append(f"{rel}:{node.lineno}: a loop that waits against its own deadline")
        if is_sleep(node) and not in_loop:
            found.append(f"{rel}:{node.lineno}: a fixed sleep")
        for child in ast.iter_child_nodes(node):
            visit(child, in_loop or isinstance(node, (ast.For, ast.While)), depth)

    visit(tree, False, 0)
    return found


def test_tests_wait_through_the_harness() -> None:
    """Tests wait for a condition with ``harness.wait_until`` (bounded, and it reports what it
    last saw), and make a deliberate window with ``harness.observe_for``. ``time.sleep`` only
    paces a client inside its own loop."""
    found = [w for p in sorted(TESTS.glob("test_*.py")) for w in _fixed_waits(p)]
    assert not found, ("use harness.wait_until to wait for something, or harness.observe_for "
                       "for a window in which something must not happen:\n  " + "\n  ".join(found))
