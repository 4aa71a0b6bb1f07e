"""The glossary: one file, generated tables, and every page speaking its own language's terms.

``overrides/glossary.yml`` is the one glossary. The glossary pages include tables generated
from it (``snippets/glossary/terms*.md``, by ``python -m tools glossary``). Every page in
every language, and every translated fragment or diagram, is read outside code and checked:

* no word that its language ``avoid``s (工作者 or traditional 進程 on a Chinese page);
* no other language's term where its own language has a different one ("worker" or
  "tiến trình" on a Chinese page, "process" on a Vietnamese one, 进程 on an English one);
* on Chinese pages, no traditional character.

Quoted material (blockquotes, "…", “…”, 「…」) is exempt: quoting a source note word for word
is allowed. Admonition titles are prose and are checked. Tab labels (``=== "..."``) name
commands and products, so only the avoid rule applies to them. In Mermaid diagrams only the
labels are read (node ids are identifiers); ``<code>`` and backticks mark code there too.
Each failure names the file and line, the word, and the term to write instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import pages
from pages import LANGS, ROOT, SNIPPETS
from tools import snippets as addresses

sys.path.insert(0, str(ROOT / "overrides" / "hooks"))
import glossary  # noqa: E402  (overrides/hooks/glossary.py, the generator)

TERMS = glossary.load()
#: The generated tables, one per language, as the glossary pages include them.
GENERATED_NAMES = ("glossary/terms.md", "glossary/terms.vi.md", "glossary/terms.zh.md")
GENERATED = [SNIPPETS / name for name in GENERATED_NAMES]
assert GENERATED == [glossary.fragment_path(lang) for lang in LANGS]

#: Common characters written differently in simplified Chinese; none is used in simplified text.
TRADITIONAL = set(
    "這個們時間為會對說從後發來過還進線開關機體與應數據連網絡處實現動態讓點試測驗證啟統長優確認"
    "碼環資訊號傳輸將區類顯報樣儲記憶負載請務設計協斷單錯誤並當執讀寫檔頁選擇啟麼"
)


# --------------------------------------------------------------------------- the checker


@dataclass(frozen=True)
class Problem:
    where: str  # file:line
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _variants(word: str) -> list[str]:
    """A term and the forms a page may write it in: "luồng (thread)" -> also "luồng"."""
    out = [word]
    m = re.fullmatch(r"(.+?)\s*[（(](.+)[)）]", word)
    if m:
        out.append(m[1].strip())
    if re.search(r"[A-Za-z] [\u4e00-\u9fff]", word):  # "worker 类" is also written "worker类"
        out.append(word.replace(" ", ""))
    return out


def _pattern(word: str) -> re.Pattern:
    """Latin words match whole words (plural -s/-es too); Han words match anywhere."""
    body = re.escape(word).replace(r"\ ", r"\s*" if re.search(r"[\u4e00-\u9fff]", word) else r"\s+")
    if re.search(r"[A-Za-zÀ-ỹ]$", word):
        body += r"(?:e?s)?(?![\w\-/])"
    if re.match(r"[A-Za-zÀ-ỹ]", word):
        body = r"(?<![\w\-./])" + body
    return re.compile(body, re.IGNORECASE)


@dataclass(frozen=True)
class Rules:
    lang: str
    own: list[str]  # this language's terms, longest first (masked before looking for others)
    avoid: list[tuple[re.Pattern, str, str]]  # (pattern, word, what to write instead)
    foreign: list[tuple[re.Pattern, str, str, str]]  # (pattern, word, its language, own term)


def rules_for(lang: str, terms: list[glossary.Term] = TERMS) -> Rules:
    own = sorted({v for t in terms for v in _variants(t.words[lang])}, key=len, reverse=True)
    avoid = [(_pattern(w), w, t.words[lang]) for t in terms for w in t.avoid[lang]]
    foreign: dict[str, tuple[list[str], str]] = {}  # word -> (languages it is a term of, own term)
    own_lower = {o.lower() for o in own}
    for t in terms:
        for other in LANGS:
            if other == lang:
                continue
            # "luồng (thread)": the Vietnamese word is "luồng"; "thread" is the English one.
            word = _variants(t.words[other])[-1] if other == "vi" else t.words[other]
            if word.lower() not in own_lower:
                foreign.setdefault(word.lower(), ([], t.words[lang]))[0].append(other)
    return Rules(lang, own, avoid, [
        (_pattern(word), word, "/".join(others), instead)
        for word, (others, instead) in foreign.items()
    ])


RULES = {lang: rules_for(lang) for lang in LANGS}

_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|「[^」]*」|『[^』]*』')
_ADMONITION = re.compile(r'^\s*(?:!!!|\?\?\?\+?)\s+[\w-]+(?:\s+"(?P<title>[^"]*)")?\s*$')
_MERMAID_LABEL = re.compile(
    r'"([^"]*)"'  # "quoted" node, edge and subgraph labels
    r"|\|([^|]*)\|"  # |edge labels|
    r"|[\[({>]+([^\"\[\](){}|]+)[\])}]+"  # id[label], id(label), id{label}
    r"|(?:--|-\.)\s+([^\"\s>.-][^>]*?)\s+(?:-->|\.->|---)"  # -- label -->
)
_STRIP = [
    re.compile(r"<!--.*?-->"),  # comments
    re.compile(r"(`+)(?:(?!\1).)+\1"),  # inline code
    re.compile(r"<code>.*?</code>"),  # inline code written as HTML
    re.compile(r"\]\([^)]*\)"),  # link targets (text stays)
    re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$"),  # reference link definitions
    re.compile(r"<https?://[^>]*>|https?://\S+"),  # URLs
    re.compile(r"\{[:\s]*[#.][^}]*\}"),  # attribute lists { #id }
    re.compile(r"</?[a-zA-Z][^>]*>"),  # HTML tags
]
_TAB_LABEL = re.compile(r'^\s*===\+?\s+"[^"]*"\s*$')


def clean(line: str) -> str:
    for rx in _STRIP:
        line = rx.sub(" ", line)
    return line


def text_lines(path: Path, lang: str) -> list[tuple[int, str, bool]]:
    """(line number, text, is it a tab label) for the prose of a page, fragment or diagram."""
    lines = path.read_text("utf-8").splitlines()
    if path.suffix == ".mmd":  # labels only: "..." in nodes and edges, |...| on edges
        return [(no, " ".join("".join(groups) for groups in _MERMAID_LABEL.findall(ln)), False)
                for no, ln in enumerate(lines, 1) if not ln.lstrip().startswith("%%")]
    page = pages.Page(path, lang, lines)
    out = []
    for no, ln in page.prose_lines():
        if pages.ANY_INCLUDE_RE.search(ln) or ln.lstrip().startswith(">"):
            continue  # includes; quotations
        out.append((no, ln, bool(_TAB_LABEL.match(ln))))
    return out


def check(path: Path, lang: str, shown_as: str | None = None) -> list[Problem]:
    """Every glossary problem in one file, each with its file:line."""
    shown_as = shown_as or str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    rules = RULES[lang]
    problems = []
    for no, raw, is_tab_label in text_lines(path, lang):
        where = f"{shown_as}:{no}"
        admonition = _ADMONITION.match(raw)
        if admonition:  # its title is prose, though written in quotes
            raw = admonition["title"] or ""
        line = clean(raw) if path.suffix == ".mmd" else _QUOTED.sub(" ", clean(raw))
        for rx, _word, instead in rules.avoid:
            for m in rx.finditer(line):
                problems.append(Problem(
                    where, f"{m[0]!r} is a word {lang} pages avoid; write {instead!r} "
                    "(overrides/glossary.yml)"))
        if lang == "zh":
            for ch in sorted({c for c in line if c in TRADITIONAL}):
                problems.append(Problem(where, f"traditional character {ch!r} on a simplified "
                                               "Chinese page"))
        if is_tab_label:
            continue
        masked = line
        for word in rules.own:
            masked = _pattern(word).sub(" \x00 ", masked)
        for rx, _word, other, instead in rules.foreign:
            for m in rx.finditer(masked):
                problems.append(Problem(
                    where, f"{m[0]!r} is the {other} term; {lang} pages write {instead!r} "
                    "(overrides/glossary.yml)"))
    return problems


def checked_files() -> list[tuple[Path, str]]:
    """Every page, plus the translated fragments and diagrams pages include."""
    files = [(p.path, p.lang) for p in pages.all_pages()]
    for path in pages.snippet_files():
        if path.parent.name == "glossary" or path.suffix not in (".md", ".mmd"):
            continue  # the glossary tables show every language's words on purpose
        m = re.search(r"\.(vi|zh)\.(md|mmd)$", path.name)
        if m:
            files.append((path, m[1]))
        elif path.suffix == ".mmd":
            files.append((path, "en"))
    return files


# --------------------------------------------------------------------------- tests

FILES = checked_files()


@pytest.mark.parametrize(("path", "lang"), FILES, ids=[str(p.relative_to(ROOT)) for p, _ in FILES])
def test_pages_use_their_languages_terms(path: Path, lang: str) -> None:
    problems = check(path, lang)
    if problems:
        pytest.fail("\n".join(map(str, problems)), pytrace=False)


BAD_ZH = """\
---
source_hash: 000000000000
---

# 坏样例

两个工作者处理请求。

```bash
--8<-- "quickstart/uvicorn_workers.sh"
```

主進程负责 fork。每个 worker 都有自己的事件循环，这個页面用了繁体字。

Gunicorn 的 `asgi` worker 类和 [工作进程](scaling.md#worker) 都没问题；`--workers 2` 也是。
这句话里有越南语 tiến trình。
"""

BAD_VI = """\
# Mẫu sai

Mỗi process có event loop riêng; đừng gọi là tiểu trình.
Gói `uvicorn-worker` và worker class `asgi` đều đúng; luồng (thread) cũng đúng.
Chữ Hán 进程 không nên xuất hiện ở đây.
"""

BAD_EN = """\
# Bad sample

Each tiến trình runs its own event loop, and `工作进程` in inline code is fine.
The note said "工作者 and 進程" in a quotation, which is fine too.
"""

BAD_VI_DIAGRAM = """\
flowchart LR
    threads["Thread pool"] --> master["Tiến trình master"]
    master -- "mỗi process" --> w1[worker 工作进程]
"""


def test_checker_catches_a_bad_page(tmp_path: Path) -> None:
    """The check fails on deliberately bad pages, at the right lines, and only there."""
    samples = {"bad.zh.md": (BAD_ZH, "zh"), "bad.vi.md": (BAD_VI, "vi"), "bad.md": (BAD_EN, "en"),
               "bad.vi.mmd": (BAD_VI_DIAGRAM, "vi")}
    found = {}
    for name, (text, lang) in samples.items():
        (tmp_path / name).write_text(text, "utf-8")
        found[name] = [str(p) for p in check(tmp_path / name, lang, shown_as=name)]

    def at(name: str, line: int, word: str) -> bool:
        return any(p.startswith(f"{name}:{line}: ") and repr(word) in p for p in found[name])

    assert at("bad.zh.md", 7, "工作者"), found["bad.zh.md"]
    assert at("bad.zh.md", 13, "進程"), found["bad.zh.md"]
    assert at("bad.zh.md", 13, "worker"), found["bad.zh.md"]
    assert at("bad.zh.md", 13, "個"), found["bad.zh.md"]
    assert at("bad.zh.md", 16, "tiến trình"), found["bad.zh.md"]
    assert not any(p.startswith("bad.zh.md:15:") for p in found["bad.zh.md"]), found["bad.zh.md"]
    assert at("bad.vi.md", 3, "process"), found["bad.vi.md"]
    assert at("bad.vi.md", 3, "tiểu trình"), found["bad.vi.md"]
    assert not any(p.startswith("bad.vi.md:4:") for p in found["bad.vi.md"]), found["bad.vi.md"]
    assert at("bad.vi.md", 5, "进程"), found["bad.vi.md"]
    assert found["bad.md"] == [
        f"bad.md:3: {'tiến trình'!r} is the vi term; en pages write 'process' "
        "(overrides/glossary.yml)"
    ], found["bad.md"]
    # In a diagram only labels count: the node id "threads" is fine, "process" is not.
    assert not any(p.startswith("bad.vi.mmd:2:") for p in found["bad.vi.mmd"]), found["bad.vi.mmd"]
    assert at("bad.vi.mmd", 3, "process") and at("bad.vi.mmd", 3, "工作进程"), found["bad.vi.mmd"]


# --------------------------------------------------------------------------- generated tables

_TABLE_HEADER = re.compile(r"^\|(.+)\|\s*$")


def table_headers(text: str) -> list[str]:
    """The header row of every Markdown table in a fragment (the row above ``|---|``)."""
    lines = text.splitlines()
    return [lines[i - 1] for i, ln in enumerate(lines)
            if i and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", ln)
            and _TABLE_HEADER.match(lines[i - 1])]


def english_words(header: str) -> list[str]:
    """The words of a table header row that are English prose: not code, not a footnote, not a
    capitalised name (Uvicorn, Gunicorn, RSS)."""
    text = re.sub(r"`[^`]*`|\[\^[^\]]*\]", " ", header)
    return [w for w in re.findall(r"[A-Za-z]+", text) if w.islower()]


def english_fragments(page: pages.Page, snippets: Path = SNIPPETS) -> list[str]:
    """Problems with the Markdown fragments (generated tables) a vi or zh page includes: it
    must include its own language's version, and that version's tables must not keep the
    English header rows."""
    problems = []
    for inc in page.includes():
        if inc.in_fence or not inc.file.endswith(".md"):
            continue
        shared_name = addresses.shared_file(inc.file)
        shared = snippets / shared_name
        own = shared.with_name(f"{shared.stem}.{page.lang}{shared.suffix}")
        if inc.file == shared_name:  # the English fragment
            hint = (f"include {own.relative_to(snippets)} instead" if own.is_file() else
                    f"generate {own.relative_to(snippets)} and include it")
            problems.append(f"{page.at(inc.line)}: includes the English {inc.file}; {hint}")
            continue
        english = set(table_headers(shared.read_text("utf-8"))) if shared.is_file() else set()
        for header in table_headers((snippets / inc.file).read_text("utf-8")):
            if header in english and english_words(header):
                problems.append(f"{page.at(inc.line)}: {inc.file} has the English table "
                                f"header {header.strip()!r}; translate its generator's words")
    return problems


TRANSLATED_PAGES = [p for p in pages.all_pages() if p.lang != "en"]


@pytest.mark.parametrize("page", TRANSLATED_PAGES, ids=[p.rel for p in TRANSLATED_PAGES])
def test_translated_pages_include_their_languages_tables(page: pages.Page) -> None:
    """A Vietnamese or Chinese page shows generated tables in its own language."""
    problems = english_fragments(page)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_english_table_check_catches_an_english_table(tmp_path: Path) -> None:
    """The check names the line of a vi page that includes an English table, and of a zh page
    whose "translated" table still has the English header; product names alone are fine."""
    (tmp_path / "t").mkdir()
    english = "| endpoint | requests/s |\n|---|---|\n| `/` | 1.5 |\n"
    (tmp_path / "t" / "table.md").write_text(english, "utf-8")
    (tmp_path / "t" / "table.vi.md").write_text(english.replace("endpoint", "điểm cuối")
                                                .replace("requests/s", "request/giây"), "utf-8")
    (tmp_path / "t" / "table.zh.md").write_text(english, "utf-8")
    names = "| | Uvicorn `--workers` | Granian |\n|---|---|---|\n"  # the same in every language
    (tmp_path / "t" / "names.md").write_text(names, "utf-8")
    (tmp_path / "t" / "names.zh.md").write_text(names, "utf-8")
    vi = pages.Page(ROOT / "docs" / "bad.vi.md", "vi", ["# Mẫu", "", '--8<-- "t/table.md"'])
    assert english_fragments(vi, tmp_path) == [
        "docs/bad.vi.md:3: includes the English t/table.md; include t/table.vi.md instead"]
    vi.lines[2] = '--8<-- "t/table.vi.md"'
    assert english_fragments(vi, tmp_path) == []
    zh = pages.Page(ROOT / "docs" / "bad.zh.md", "zh",
                    ["# 样例", "", '--8<-- "t/table.zh.md"', "", '--8<-- "t/names.zh.md"'])
    assert english_fragments(zh, tmp_path) == [
        "docs/bad.zh.md:3: t/table.zh.md has the English table header "
        "'| endpoint | requests/s |'; translate its generator's words"]


def test_known_variants_of_a_term_are_flagged(tmp_path: Path) -> None:
    """A second rendering of a glossary term (its ``avoid`` list) fails, naming the line and
    the one rendering to write: one term, one rendering per language."""
    samples = {
        "v.zh.md": (
            "zh",
            "# 样例\n\n把优雅关闭期限设短一些，并留出宽限时间。见[快速开始](quickstart.md)。\n",
        ),
        "v.vi.md": ("vi", "# Mẫu\n\nGiữ nó thấp hơn thời gian ân hạn của Kubernetes.\n"),
    }
    found = []
    for name, (lang, text) in samples.items():
        (tmp_path / name).write_text(text, "utf-8")
        found += [str(p) for p in check(tmp_path / name, lang, shown_as=name)]
    assert sorted(found) == sorted([
        "v.zh.md:3: '宽限时间' is a word zh pages avoid; write '宽限期' (overrides/glossary.yml)",
        "v.zh.md:3: '优雅关闭期限' is a word zh pages avoid; write '优雅关闭超时' "
        "(overrides/glossary.yml)",
        "v.zh.md:3: '快速开始' is a word zh pages avoid; write '快速上手' (overrides/glossary.yml)",
        "v.vi.md:3: 'thời gian ân hạn' is a word vi pages avoid; write 'grace period' "
        "(overrides/glossary.yml)",
    ]), found


_TAB = re.compile(r'^\s*===\+?\s+"([^"]*)"\s*$')


def tab_labels(page: pages.Page) -> list[tuple[int, str]]:
    inside = page.fence_lines()
    return [(no, m[1]) for no, ln in enumerate(page.lines, 1)
            if no not in inside and (m := _TAB.match(ln))]


@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != "en"])
def test_tab_labels_are_translated_one_way(lang: str) -> None:
    """Linked tabs switch together only when their labels are identical, so an English tab
    label has one translation on every page of a language (the n-th tab of a translated page
    is the n-th tab of its English page)."""
    seen: dict[str, dict[str, list[str]]] = {}
    problems = []
    for topic in pages.topics():
        en, tr = pages.load(pages.page_path(topic, "en")), pages.load(pages.page_path(topic, lang))
        en_tabs, tr_tabs = tab_labels(en), tab_labels(tr)
        if len(en_tabs) != len(tr_tabs):
            problems.append(f"{tr.rel}: {len(tr_tabs)} tabs, {en.rel} has {len(en_tabs)}")
            continue
        for (_, english), (no, label) in zip(en_tabs, tr_tabs, strict=True):
            seen.setdefault(english, {}).setdefault(label, []).append(tr.at(no))
    for english, labels in seen.items():
        if len(labels) > 1:
            ways = "; ".join(f"{label!r} at {', '.join(where)}" for label, where in labels.items())
            problems.append(
                f"tab {english!r} is labelled {len(labels)} ways on {lang} pages: {ways}"
            )
    assert not problems, "\n".join(problems)


_SYNTAX_QUOTES = re.compile(r'^\s*(?:!!!|\?\?\?\+?|===\+?)\s')  # admonition and tab titles


def straight_quotes(path: Path, shown_as: str | None = None) -> list[str]:
    """Lines of Chinese prose that quote with ASCII "..." instead of “...”."""
    shown_as = shown_as or str(path.relative_to(ROOT))
    page = pages.Page(path, "zh", path.read_text("utf-8").splitlines())
    problems = []
    for no, line in page.prose_lines():
        if pages.ANY_INCLUDE_RE.search(line) or _SYNTAX_QUOTES.match(line):
            continue
        if '"' in clean(line):
            problems.append(f"{shown_as}:{no}: straight quotes in Chinese prose; write “…”")
    return problems


ZH_PROSE = [p.path for p in pages.all_pages() if p.lang == "zh"] + [
    path for path in pages.snippet_files() if path.name.endswith(".zh.md")]


@pytest.mark.parametrize("path", ZH_PROSE, ids=[str(p.relative_to(ROOT)) for p in ZH_PROSE])
def test_chinese_prose_quotes_with_curly_quotes(path: Path) -> None:
    problems = straight_quotes(path)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_straight_quote_check_bites(tmp_path: Path) -> None:
    sample = tmp_path / "q.zh.md"
    sample.write_text('# 样例\n\n称之为"正确做法"。\n\n称之为“正确做法”，`"code"` 没问题。\n\n'
                      '!!! warning "标题"\n', "utf-8")
    assert straight_quotes(sample, "q.zh.md") == [
        "q.zh.md:3: straight quotes in Chinese prose; write “…”"]


def test_definitions_follow_their_own_rules(tmp_path: Path) -> None:
    """Each language's definitions, shown on its glossary page, use that language's terms."""
    problems = []
    for lang in LANGS:
        sample = tmp_path / f"definitions.{lang}.md"
        sample.write_text("\n".join(t.define[lang] for t in TERMS) + "\n", "utf-8")
        for p in check(sample, lang, shown_as=f"overrides/glossary.yml (define.{lang})"):
            no = int(p.where.rsplit(":", 1)[1])
            term = TERMS[no - 1].term
            problems.append(f"overrides/glossary.yml: term {term!r}, define.{lang}: {p.message}")
    assert not problems, "\n".join(problems)


def test_tables_are_generated_from_the_glossary(tmp_path: Path) -> None:
    """`python -m tools glossary` (named on the glossary page) regenerates exactly the
    committed tables."""
    out = tmp_path / "glossary"
    r = subprocess.run([sys.executable, "-m", "tools", "glossary", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"python -m tools glossary: exit code {r.returncode}\n{r.stderr}"
    stale = []
    for committed in GENERATED:
        fresh = out / committed.name
        assert fresh.is_file(), f"python -m tools glossary did not write {committed.name}"
        if fresh.read_text("utf-8") != committed.read_text("utf-8"):
            stale.append(str(committed.relative_to(ROOT)))
    assert not stale, (
        f"{', '.join(stale)}: stale; overrides/glossary.yml changed. Regenerate with "
        "`python -m tools glossary`"
    )
    assert glossary.stale_fragments() == [], "the build hook disagrees with the generator"


def test_a_stale_table_is_detected(tmp_path: Path) -> None:
    """The freshness check the build hook runs can fail: a hand-edited table is caught."""
    for path in GENERATED:
        (tmp_path / path.name).write_text(path.read_text("utf-8"), "utf-8")
    assert glossary.stale_fragments(tmp_path) == []
    edited = tmp_path / "terms.zh.md"
    edited.write_text(edited.read_text("utf-8").replace("| 工作进程", "| 工作者", 1), "utf-8")
    assert glossary.stale_fragments(tmp_path) == [edited]


def test_glossary_pages_include_their_own_table() -> None:
    for lang in LANGS:
        page = pages.load(pages.page_path("glossary", lang))
        want = str(glossary.fragment_path(lang).relative_to(SNIPPETS))
        assert want in [i.target for i in page.includes()], f"{page.rel}: does not include {want}"


def test_built_glossary_has_every_term_side_by_side(built_site: Path) -> None:
    """Same rows, same anchors, all three words per row, definition in the page's language."""
    anchors = [t.anchor for t in TERMS]
    for lang in LANGS:
        folder = built_site / ("" if lang == "en" else lang) / "glossary"
        html = (folder / "index.html").read_text("utf-8")
        rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
        ids = [m[1] for r in rows if (m := re.search(r'<strong id="([^"]+)"', r))]
        assert ids == anchors, f"{lang}: glossary rows/anchors differ from overrides/glossary.yml"
        for t, row in zip(TERMS, [r for r in rows if "<strong id=" in r], strict=True):
            text = re.sub(r"<[^>]+>", "", row)
            for word in (*t.words.values(), *[w for ws in t.avoid.values() for w in ws]):
                assert word in text, f"{lang}: row #{t.anchor} lacks {word!r}"
            define = re.sub(r"`([^`]*)`", r"\1", t.define[lang])
            assert define in text, f"{lang}: row #{t.anchor} lacks its {lang} definition"


def test_glossary_file_is_well_formed() -> None:
    """Every term has all three words and definitions; no avoided word is also a term."""
    assert len(TERMS) >= 30
    own = {lang: {t.words[lang].lower() for t in TERMS} for lang in LANGS}
    for t in TERMS:
        for lang, words in t.avoid.items():
            for w in words:
                assert w.lower() not in own[lang], f"overrides/glossary.yml: {w!r}: avoided, a term"
    required = {"worker", "thread", "process", "event loop", "coroutine", "pod", "replica",
                "worker class", "ASGI", "WSGI", "heartbeat", "graceful shutdown"}
    assert required <= {t.term for t in TERMS}


if __name__ == "__main__":  # a quick look without pytest: python tests/test_glossary.py
    for path, lang in FILES:
        for problem in check(path, lang):
            print(problem)
