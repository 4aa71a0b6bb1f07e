"""The built site: every page in every language, each showing the versions it was verified with."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

import harness
import pages
from pages import LANGS

VERIFIED = ("fastapi", "gunicorn", "uvicorn", "uvicorn-worker")


def built_page(site: Path, topic: str, lang: str) -> Path:
    prefix = "" if lang == "en" else f"{lang}/"
    folder = "" if topic == "index" else f"{topic}/"
    return site / prefix / folder / "index.html"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.alternates: dict[str, str] = {}
        self.lang = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "link" and a.get("rel") == "alternate" and a.get("hreflang"):
            self.alternates[a["hreflang"]] = a["href"]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("topic", pages.topics())
def test_page_is_built_with_versions_and_language_links(
    built_site: Path, topic: str, lang: str
) -> None:
    path = built_page(built_site, topic, lang)
    assert path.is_file(), (
        f"{pages.page_path(topic, lang).relative_to(pages.ROOT)}: not built to {path}"
    )
    html = path.read_text("utf-8")
    banner = re.search(r'<div class="hb-verified" data-hb-verified>(.*?)</div>', html, re.S)
    assert banner, f"{path}: no versions banner"
    for name in VERIFIED:
        assert f"{name} {version(name)}" in banner[1], (
            f"{path}: banner lacks {name} {version(name)}"
        )
    parser = _Links()
    parser.feed(html)
    assert parser.lang == lang
    # The language switcher keeps the page: each alternate points at this topic in that language.
    assert set(parser.alternates) == set(LANGS), parser.alternates
    for other, href in parser.alternates.items():
        target = (path.parent / href).resolve() if not href.startswith("/") else None
        expected = built_page(built_site, topic, other).resolve()
        if target is not None:
            assert target in (expected, expected.parent), f"{path}: {other} link {href} -> {target}"
        else:
            assert href.rstrip("/").endswith(
                str(expected.parent.relative_to(built_site)).rstrip(".")
            ), href


# ------------------------------------------------------------------ the site a reader expects
# (overrides/hooks/site_features.py; tests/test_browser.py checks the same in a real browser)

sys.path.insert(0, str(pages.ROOT / "overrides" / "hooks"))
import site_features as site_hook  # noqa: E402  (overrides/hooks/site_features.py)

PREFIX = {"en": "", "vi": "vi/", "zh": "zh/"}


def test_search_index_segments_chinese_and_keeps_vietnamese_diacritics(built_site: Path) -> None:
    """Material segments Chinese with jieba (U+200B between words); the separator splits on it."""
    index = json.loads((built_site / "search" / "search_index.json").read_text("utf-8"))
    separator = re.compile(index["config"]["separator"])
    assert separator.search("\u200b") and separator.search(" ") and not separator.search("ế")
    by_location = {d["location"]: d for d in index["docs"]}
    zh = by_location["zh/glossary/#terms"]["text"]
    # 监管 sits inside the run 由服务器的主进程启动和监管: only segmentation makes it a word.
    assert "监管" in separator.split(zh), "jieba did not segment the Chinese glossary"
    vi = separator.split(by_location["vi/glossary/#terms"]["text"])
    assert "giám" in vi and "sát" in vi, "a Vietnamese word lost its diacritics or kept a '.'"
    assert "thread" in vi, "punctuation stays glued to words: luồng (thread)"
    langs = {loc.split("/")[0] if loc.startswith(("vi/", "zh/")) else "en" for loc in by_location}
    assert langs == {"en", "vi", "zh"}, "the one index holds every language; the worker filters"


def test_search_worker_is_narrowed_to_the_page_language(built_site: Path) -> None:
    """Every page starts Material's worker through hb-search.js with its own language."""
    worker = built_site / "assets" / "javascripts" / "workers" / "hb-search.js"
    assert worker.is_file()
    for lang, prefix in PREFIX.items():
        html = (built_site / prefix / "quickstart" / "index.html").read_text("utf-8")
        assert 'new URL("hb-search.js", worker)' in html
        assert f'searchParams.set("lang", "{lang}")' in html, lang
        assert json.dumps({code: p for code, p in PREFIX.items()}) in html


def test_mermaid_is_served_from_the_site_and_pinned(built_site: Path) -> None:
    """mermaid.min.js comes from the locked artoo-mermaid, byte-identical to npm mermaid@11.16.0."""
    served = built_site / site_hook.MERMAID_DEST
    assert hashlib.sha256(served.read_bytes()).hexdigest() == site_hook.MERMAID_SHA256
    lock = (pages.ROOT / "uv.lock").read_text("utf-8")
    dist, pinned = site_hook.MERMAID_DIST, site_hook.MERMAID_VERSION
    assert re.search(rf'name = "{dist}"\nversion = "{pinned}"', lock), f"uv.lock: {dist} {pinned}"
    assert f'"{dist}=={pinned}"' in (pages.ROOT / "pyproject.toml").read_text("utf-8")
    assert (built_site / "assets" / "javascripts" / "mermaid.NOTICE.md").is_file()
    with_diagram = built_site / "quickstart" / "index.html"
    without = built_site / "index.html"
    assert "mermaid.min.js" in with_diagram.read_text("utf-8")
    assert "mermaid.min.js" not in without.read_text("utf-8"), "only diagram pages load Mermaid"


@pytest.mark.parametrize("lang", LANGS)
def test_each_language_has_its_404_page_and_sitemap(built_site: Path, lang: str) -> None:
    prefix = PREFIX[lang]
    html = (built_site / prefix / "404.html").read_text("utf-8")
    assert f'<html lang="{lang}"' in html
    assert 'id="not-found"' in html
    parser = _Links()
    parser.feed(html)
    base = "/"  # site_url's path
    assert parser.alternates == {code: base + p for code, p in PREFIX.items()}, "404 language links"
    sitemap = (built_site / prefix / "sitemap.xml").read_text("utf-8")
    locs = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    want = {f"{base}{prefix}{'' if t == 'index' else t + '/'}" for t in pages.topics()}
    paths = {httpx.URL(u).path for u in locs}
    if prefix:
        assert paths == want, f"{prefix}sitemap.xml lists {sorted(paths ^ want)} wrongly"
    else:
        assert paths >= want and len(paths) == len(LANGS) * len(want), "sitemap.xml: every page"
    gz = gzip.decompress((built_site / prefix / "sitemap.xml.gz").read_bytes())
    assert gz.decode("utf-8") == sitemap


def _without_venv(path: str) -> str:
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and p != venv_bin)


def test_readme_serve_command_serves_every_language(tmp_path: Path) -> None:
    """The README's `mkdocs serve` command, on a free port: every language, the search index."""
    readme = (pages.ROOT / "README.md").read_text("utf-8")
    command = re.search(r"^(python3 .*mkdocs serve -a 127\.0\.0\.1:8000)$", readme, re.M)
    assert command, "README.md: no `mkdocs serve -a 127.0.0.1:8000` command"
    # Skip its `pip install uv` (the suite already runs under uv), keep the rest as written.
    serve = command[1].split("&&")[-1].strip()
    port = harness.free_port()
    serve = harness.rewrite(serve, {8000: port})
    env = harness.base_env()
    env["PATH"] = _without_venv(env["PATH"])  # the README's python3, not the venv's
    env.pop("VIRTUAL_ENV", None)
    log = tmp_path / "mkdocs-serve.log"
    proc = harness.spawn(serve, pages.ROOT, env, log)
    base = f"http://{harness.HOST}:{port}"
    try:
        def home_answers() -> bool:
            if proc.poll() is not None:
                raise harness.HarnessError(f"`{serve}` exited {proc.poll()}:\n"
                                           + harness.tail(log))
            with contextlib.suppress(httpx.HTTPError):
                return harness.http_get(base + "/", timeout=5).status_code == 200
            return False

        harness.wait_until(home_answers, what=f"`{serve}` serves {base}/", timeout=180,
                           interval=0.5, describe=lambda: harness.tail(log, 5))
        with harness.http_client(base_url=base, timeout=30) as client:
            for lang, prefix in PREFIX.items():
                r = client.get(f"/{prefix}")
                assert r.status_code == 200, (lang, r.status_code)
                assert f'<html lang="{lang}"' in r.text, lang
            index = client.get("/search/search_index.json").json()
            locations = [d["location"] for d in index["docs"]]
            assert any(loc.startswith("vi/") for loc in locations)
            assert any(loc.startswith("zh/") for loc in locations)
            mermaid = client.get("/" + site_hook.MERMAID_DEST)
            assert mermaid.status_code == 200
            assert hashlib.sha256(mermaid.content).hexdigest() == site_hook.MERMAID_SHA256
            missing = client.get("/no-such-page/")
            assert missing.status_code == 404 and 'id="not-found"' in missing.text
    finally:
        leftovers = harness.kill_group(proc.pid)
        proc.wait(timeout=10)
    assert leftovers, "mkdocs serve had already exited"


def test_site_publishes_no_theme_data(built_site: Path) -> None:
    """overrides/ holds glossary.yml next to the theme; the build leaves it out of the site."""
    assert not (built_site / "glossary.yml").exists()


#: Interface strings that come from mkdocs.yml (the palette toggle) and from Python-Markdown's
#: toc (the heading links' title), not from Material's own translations.
ENGLISH_UI = ("Switch to light mode", "Switch to dark mode", "Switch to system preference",
              "Permanent link")


@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != "en"])
def test_translated_pages_have_no_english_interface_strings(built_site: Path, lang: str) -> None:
    """Every vi and zh page shows the light/dark toggle's tooltips and the headings' link title
    in its own language (mkdocs.yml's per-language theme.palette and extra.permalink_title)."""
    english = (built_site / "timeouts" / "index.html").read_text("utf-8")
    assert all(f'"{s}"' in english for s in ENGLISH_UI), "the English strings changed"
    problems = []
    for topic in pages.topics():
        path = built_page(built_site, topic, lang)
        html = path.read_text("utf-8")
        for no, line in enumerate(html.splitlines(), 1):
            problems += [f"{path.relative_to(built_site)}:{no}: {s!r}" for s in ENGLISH_UI
                         if f'"{s}"' in line]
        titles = set(re.findall(r'class="headerlink" href="#[^"]*" title="([^"]*)"', html))
        if len(titles) > 1:
            problems.append(f"{path.relative_to(built_site)}: heading links titled {titles}")
    assert not problems, "English interface strings on translated pages:\n" + "\n".join(problems)


# ------------------------------------------------------------------ the fast build
# (overrides/hooks/fast_build.py: caches by content; the site must not change)

ARTICLE = re.compile(r'<article class="md-content__inner md-typeset">.*?</article>', re.S)


def _first_difference(a: str, b: str, context: int = 120) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
              min(len(a), len(b)))
    start, end = max(0, at - context), at + context
    return f"at character {at}:\n  {a[start:end]!r}\n  {b[start:end]!r}"


def test_fast_build_changes_no_page_and_no_search_entry(built_site: Path, tmp_path: Path) -> None:
    """overrides/hooks/fast_build.py changes the work, not the site. The Chinese pages built
    without it (HANDBOOK_FAST_BUILD=0, Chinese only) have the same content and the same search
    entries, jieba's segmentation included, as those of the full build, whose code blocks were
    highlighted for English and Vietnamese first, whose templates came from the bytecode cache
    and whose search entries came from code blocks stripped of their token tags."""
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    env = harness.base_env({"HANDBOOK_FAST_BUILD": "0", "HANDBOOK_LANGUAGES": "zh"})
    r = subprocess.run(command, cwd=pages.ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, (f"HANDBOOK_FAST_BUILD=0 HANDBOOK_LANGUAGES=zh {' '.join(command)}: "
                               f"exit code {r.returncode}\n{r.stderr[-3000:]}")
    assert "Prefix dict has been built" in r.stderr, "a Chinese build loads jieba's dictionary"
    for topic in pages.topics():
        fast, slow = (ARTICLE.search(built_page(s, topic, "zh").read_text("utf-8"))[0]
                      for s in (built_site, site))
        assert fast == slow, (f"{built_page(built_site, topic, 'zh')}: the page differs from "
                              "the one built with HANDBOOK_FAST_BUILD=0 "
                              + _first_difference(fast, slow))
    index = json.loads((built_site / "search" / "search_index.json").read_text("utf-8"))
    fast = [d for d in index["docs"] if d["location"].startswith("zh/")]
    slow = json.loads((site / "search" / "search_index.json").read_text("utf-8"))["docs"]
    assert len(fast) == len(slow), ([d["location"] for d in fast], [d["location"] for d in slow])
    for f, s in zip(fast, slow, strict=True):
        texts = (json.dumps(entry, ensure_ascii=False) for entry in (f, s))
        assert f == s, (f"search entry {f['location']} differs from the one built with "
                        f"HANDBOOK_FAST_BUILD=0 {_first_difference(*texts)}")
