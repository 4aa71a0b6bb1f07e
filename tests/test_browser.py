"""The built site in a real browser: headless Chromium from Debian's packages, via Playwright.

The site is built once (``built_site``), served by a static HTTP server on 127.0.0.1 that,
like a typical host, answers a missing address with the 404 page of its language. Every
request the browser makes to any other host is blocked and recorded: the site must work
offline (no CDN for Mermaid, no Google Fonts).

If ``/usr/bin/chromium`` or a Chinese font is missing, the session installs them with
apt-get (as root, or with ``sudo -n``), bounded in time, so the README's test command stays
the only command. Screenshots of every language go to the test's tmp folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import harness
from pages import LANGS

pytestmark = pytest.mark.timeout(900)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PREFIX = {"en": "/", "vi": "/vi/", "zh": "/zh/"}
#: The process diagram on the quick start page (snippets/quickstart/processes*.mmd).
DIAGRAM = {"en": "quickstart/processes.mmd", "vi": "quickstart/processes.vi.mmd",
           "zh": "quickstart/processes.zh.mmd"}
DIAGRAM_LABEL = {"en": "Worker 1", "vi": "Tiến trình master", "zh": "工作进程 1"}
#: A word from the glossary's definitions in each language, found only inside a longer run of
#: text (zh: 监管 in 由服务器的主进程启动和监管) or with its diacritics (vi: giám sát).
SEARCH = {"en": "supervised", "vi": "giám sát", "zh": "监管"}
WAIT = 20_000  # ms, for anything the browser does


# --------------------------------------------------------------------------- installing


def _apt_install(packages: list[str], timeout: float = 600) -> None:
    """apt-get install, as root or with sudo -n, serialised with the harness's apt lock."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open("/tmp/handbook-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
        for cmd in ([*sudo, "apt-get", "update", "-qq"], [*sudo, *install]):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            except (OSError, subprocess.TimeoutExpired) as exc:
                pytest.fail(f"cannot install {packages}: {' '.join(cmd)}: {exc}", pytrace=False)
            if r.returncode:
                pytest.fail(f"cannot install {packages}: {' '.join(cmd)} exited {r.returncode}\n"
                            + (r.stdout + r.stderr)[-2000:], pytrace=False)


def ensure_chromium() -> str:
    if not os.path.exists(CHROMIUM):
        try:
            harness.ensure_debian_packages("chromium", ["chromium", "fonts-noto-cjk"])
        except harness.HarnessError as exc:
            pytest.fail(f"the browser tests need Debian's chromium: {exc}", pytrace=False)
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30)
    if not fonts.stdout.strip():  # Chinese pages would render as empty boxes
        _apt_install(["fonts-noto-cjk"])
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing after installing Debian's chromium", pytrace=False)
    return CHROMIUM


# --------------------------------------------------------------------------- serving


class _SiteHandler(SimpleHTTPRequestHandler):
    """Static files; a missing one gets its language's 404 page, as hosts are set up to do."""

    site: Path

    def log_message(self, *args) -> None:
        pass

    def send_error(self, code, message=None, explain=None) -> None:
        if code != 404:
            return super().send_error(code, message, explain)
        lang = urlsplit(self.path).path.strip("/").split("/")[0]
        page = self.site / lang / "404.html"
        page = page if lang in PREFIX and page.is_file() else self.site / "404.html"
        if not page.is_file():
            return super().send_error(code, message, explain)
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a page closed mid-download
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_site(site: Path) -> Iterator[str]:
    handler = type("Handler", (_SiteHandler,), {"site": site})
    server = _QuietServer((harness.HOST, 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{harness.HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- browser


@dataclass
class Traffic:
    base: str
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def unexpected_failures(self) -> list[str]:
        # Material fetches sitemap.xml next to every <link rel=alternate>; the i18n plugin
        # points those at the same page in each language (/vi/quickstart/), where no
        # sitemap exists. Only the language homes have one (overrides/hooks/site_features.py).
        return [f for f in self.failed if not re.search(r"/sitemap\.xml \(404\)$", f)]


@dataclass
class Browser:
    context: object
    base: str
    traffic: Traffic
    shots: Path

    def page(self, path: str, width: int = 1280, height: int = 900):
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.on("response", lambda r: r.status >= 400 and self.traffic.failed.append(
            f"{r.url} ({r.status})"))
        page.goto(self.base + path, wait_until="load")
        return page


@pytest.fixture(scope="module")
def browser(built_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    shots = tmp_path_factory.mktemp("screenshots")
    with serve_site(built_site) as base, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=executable, args=CHROMIUM_ARGS, headless=True,
            locale="en-US", timeout=60_000,
        )
        traffic = Traffic(base)

        def route(route, request):
            if request.url.startswith(base + "/") or request.url.startswith(("data:", "blob:")):
                return route.continue_()
            traffic.external.append(request.url)
            return route.abort()

        context.route("**/*", route)
        context.set_default_timeout(WAIT)
        try:
            yield Browser(context, base, traffic, shots)
        finally:
            context.close()
    assert not traffic.external, f"asked other hosts (must work offline): {traffic.external}"
    assert not traffic.unexpected_failures(), f"failed requests: {traffic.unexpected_failures()}"


def _path(url: str) -> str:
    return urlsplit(url).path


# --------------------------------------------------------------------------- tests


def test_language_switch_lands_on_the_same_page(browser: Browser) -> None:
    page = browser.page("/glossary/")
    try:
        for lang in ("vi", "zh", "en"):
            page.locator(".md-header .md-select").first.hover()
            page.locator(f'.md-header a.md-select__link[hreflang="{lang}"]').click()
            page.wait_for_url(re.compile(rf"{re.escape(browser.base)}{PREFIX[lang]}glossary/$"))
            assert page.locator("html").get_attribute("lang") == lang
            assert page.locator(".md-content h1").first.inner_text().strip()
    finally:
        page.close()


def _search(browser: Browser, lang: str, query: str) -> tuple[str, list[str]]:
    """Open a page with ?q= and poll until Material's search worker has answered."""
    meta, results = _search_results(browser, lang, query)
    return meta, [href for href, _ in results]


def _search_results(browser: Browser, lang: str, query: str) -> tuple[str, list[tuple[str, str]]]:
    """The search's answer line and its results, best first: (path, the text it shows)."""
    page = browser.page(f"{PREFIX[lang]}?q={query}")
    try:
        t = page.evaluate("JSON.parse(document.getElementById('__config').textContent)"
                          ".translations")
        answered = re.compile("|".join(
            [re.escape(t["search.result.none"]), re.escape(t["search.result.one"]),
             re.escape(t["search.result.other"]).replace("\\#", r"\d+")]))
        meta = page.locator(".md-search-result__meta")
        shown = [""]

        def search_answered() -> bool:
            shown[0] = meta.inner_text().strip() if meta.count() else ""
            return bool(answered.fullmatch(shown[0]))

        harness.wait_until(search_answered, what=f"{lang}: search for {query!r} answers",
                           timeout=WAIT / 1000, interval=0.2, describe=lambda: repr(shown[0]))
        text = shown[0]
        links = page.eval_on_selector_all(
            ".md-search-result__item > .md-search-result__link",
            "els => els.map(e => [e.href, e.innerText])")
        return text, [(_path(u), shown) for u, shown in links]
    finally:
        page.close()


@pytest.mark.parametrize("lang", LANGS)
def test_search_finds_the_page_in_the_readers_language_only(browser: Browser, lang: str) -> None:
    meta, found = _search(browser, lang, SEARCH[lang])
    assert f"{PREFIX[lang]}glossary/" in found, f"{lang}: {SEARCH[lang]!r} -> {meta!r} {found}"
    others = [p for p in found if _lang_of(p) != lang]
    assert not others, f"{lang}: results from other languages: {others}"


def test_search_never_crosses_languages(browser: Browser) -> None:
    """A word every language uses finds only the reader's own pages."""
    for lang in LANGS:
        _, found = _search(browser, lang, "Gunicorn")
        assert found, f"{lang}: nothing found for Gunicorn"
        assert all(_lang_of(p) == lang for p in found), f"{lang}: {found}"


def _lang_of(path: str) -> str:
    for lang in ("vi", "zh"):
        if path.startswith(PREFIX[lang]):
            return lang
    return "en"


def _shadow_text(page, selector: str) -> list[str]:
    """Text inside the closed shadow roots Material renders diagrams into (via CDP)."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
    finally:
        cdp.detach()
    diagrams = []

    def texts(node) -> list[str]:
        out = [node.get("nodeValue", "")] if node.get("nodeType") == 3 else []
        for child in [*node.get("children", []), *node.get("shadowRoots", [])]:
            out += texts(child)
        return out

    def walk(node) -> None:
        attrs = node.get("attributes", [])
        classes = dict(zip(attrs[::2], attrs[1::2], strict=False)).get("class", "").split()
        if node.get("localName") == "div" and selector in classes and node.get("shadowRoots"):
            shadow = node["shadowRoots"][0]
            has_svg = any(c.get("localName") == "svg" for c in shadow.get("children", []))
            text = " ".join(t.strip() for t in texts(shadow) if t.strip())
            diagrams.append(text if has_svg else "")
        for child in [*node.get("children", []), *node.get("shadowRoots", [])]:
            walk(child)

    walk(root)
    return diagrams


@pytest.mark.parametrize("lang", LANGS)
def test_mermaid_diagram_renders_offline(browser: Browser, lang: str) -> None:
    assert harness.snippet(DIAGRAM[lang]).text.startswith("flowchart")
    page = browser.page(f"{PREFIX[lang]}quickstart/")
    try:
        page.wait_for_function("!document.querySelector('pre.mermaid')"
                               " && !!document.querySelector('div.mermaid')")
        box = page.locator("div.mermaid").first.bounding_box()
        assert box and box["height"] > 100 and box["width"] > 200, box
        diagrams = _shadow_text(page, "mermaid")
        assert len(diagrams) == 1 and diagrams[0], f"{lang}: no SVG in the diagram: {diagrams}"
        assert DIAGRAM_LABEL[lang] in diagrams[0], diagrams[0]
        loaded = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert any(u.endswith("/assets/javascripts/mermaid.min.js") and u.startswith(browser.base)
                   for u in loaded), loaded
        page.locator("div.mermaid").first.screenshot(path=browser.shots / f"diagram-{lang}.png")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=browser.shots / f"quickstart-{lang}.png", full_page=True)
    finally:
        page.close()


def test_code_blocks_have_a_working_copy_button(browser: Browser) -> None:
    browser.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=browser.base)
    page = browser.page("/quickstart/")
    try:
        blocks = page.locator(".md-content pre > code")
        buttons = page.locator('.md-content pre > .md-code__nav > button[data-md-type="copy"]')
        assert blocks.count() >= 4 and buttons.count() == blocks.count()
        block = page.locator(".md-content pre:has(> code)")
        block = block.filter(has_text="uvicorn main:app").first
        block.hover()
        block.locator('button[data-md-type="copy"]').click()
        page.locator(".md-dialog").filter(has_text="Copied").wait_for(state="visible")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.strip() == harness.snippet("quickstart/uvicorn_workers.sh").text.strip()
    finally:
        page.close()


@pytest.mark.parametrize("lang", LANGS)
def test_versions_banner_is_shown(browser: Browser, lang: str) -> None:
    from importlib.metadata import version

    page = browser.page(f"{PREFIX[lang]}")
    try:
        banner = page.locator("[data-hb-verified]")
        assert banner.is_visible()
        text = banner.inner_text()
        for name in ("fastapi", "gunicorn", "uvicorn"):
            assert f"{name} {version(name)}" in text, text
    finally:
        page.close()


@pytest.mark.parametrize("lang", LANGS)
def test_phone_viewport_has_no_sideways_scroll_and_a_working_drawer(
    browser: Browser, lang: str
) -> None:
    for path in ("", "quickstart/", "glossary/"):
        page = browser.page(f"{PREFIX[lang]}{path}", width=375, height=812)
        try:
            if path == "quickstart/":  # the diagram is drawn after load
                page.wait_for_function("!document.querySelector('pre.mermaid')")
            widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1], f"{lang}/{path}: {widths[0]}px wide on a 375px phone"
            if path == "quickstart/":
                page.screenshot(path=browser.shots / f"phone-{lang}.png")
            if path == "glossary/":  # rows stack into cards: nothing hides sideways in the table
                hidden = page.evaluate(
                    "(() => { const t = document.querySelector('.hb-glossary table');"
                    " return t.scrollWidth - t.clientWidth })()")
                assert hidden <= 1, f"{lang}: the glossary table scrolls sideways by {hidden}px"
            if path:
                continue
            # From the home page, reach the glossary through the drawer and its Reference section.
            page.locator('label.md-header__button[for="__drawer"]').click()
            _wait_on_screen(page, page.locator(".md-sidebar--primary"))
            page.locator("nav.md-nav--primary li.md-nav__item--nested"
                         ":has(a[href$='glossary/']) > label.md-nav__link").first.click()
            link = page.locator('nav.md-nav--primary a.md-nav__link[href$="glossary/"]').first
            _wait_on_screen(page, link)
            page.screenshot(path=browser.shots / f"phone-drawer-{lang}.png")
            link.click()
            page.wait_for_url(re.compile(rf"{re.escape(PREFIX[lang])}glossary/$"))
        finally:
            page.close()


def _wait_on_screen(page, locator) -> None:
    """Wait until an element that slides in (a CSS transform) sits fully inside the screen."""
    page.wait_for_function(
        "(el) => { const r = el.getBoundingClientRect();"
        " return r.height > 0 && r.left >= 0 && r.right <= window.innerWidth }",
        arg=locator.first.element_handle())
    page.wait_for_timeout(300)  # the end of the slide, for a clean screenshot


@pytest.mark.parametrize("lang", LANGS)
def test_missing_page_shows_the_404_page_of_its_language(browser: Browser, lang: str) -> None:
    page = browser.context.new_page()
    try:
        response = page.goto(f"{browser.base}{PREFIX[lang]}no-such-page/")
        assert response.status == 404
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("h1#not-found").inner_text().startswith("404")
        home = page.locator("[data-hb-home]")
        assert home.get_attribute("href") == PREFIX[lang]
        langs = page.eval_on_selector_all(".hb-languages a",
                                          "els => els.map(e => e.getAttribute('href'))")
        assert langs == [PREFIX[code] for code in LANGS]
        page.screenshot(path=browser.shots / f"404-{lang}.png")
        home.click()
        page.wait_for_url(re.compile(rf"{re.escape(PREFIX[lang])}$"))
    finally:
        page.close()


def test_screenshots_of_every_language(browser: Browser) -> None:
    """The glossary in each language (the quick start, 404 and phone shots come from above)."""
    for lang in LANGS:
        page = browser.page(f"{PREFIX[lang]}glossary/")
        try:
            page.screenshot(path=browser.shots / f"glossary-{lang}.png", full_page=True)
            assert (browser.shots / f"glossary-{lang}.png").stat().st_size > 10_000
        finally:
            page.close()
    print(f"screenshots: {browser.shots}")


#: How readers type (language, query, the page it must find first). Vietnamese without
#: diacritics and with them; Chinese two-character words and a query mixing English and Chinese.
TYPED = [
    ("vi", "cau hinh", "configuration/"),
    ("vi", "cấu hình", "configuration/"),
    ("vi", "nhan tin hieu", "restarts/"),
    ("zh", "心跳", "timeouts/"),
    ("zh", "gunicorn 超时", "timeouts/"),
]


@pytest.mark.parametrize(("lang", "query", "page"), TYPED, ids=[q for _, q, _ in TYPED])
def test_search_finds_what_readers_type(browser: Browser, lang: str, query: str,
                                        page: str) -> None:
    """Vietnamese: "cau hinh" finds "cấu hình" (overrides/assets/javascripts/workers/
    hb-search.js folds diacritics in the index and the query). Chinese: two-character words
    and mixed queries. The page comes first, and every result is in the reader's language."""
    meta, found = _search(browser, lang, query)
    assert found, f"{lang}: {query!r} found nothing ({meta!r})"
    assert found[0].startswith(f"{PREFIX[lang]}{page}"), f"{lang}: {query!r} -> {found[:5]}"
    assert all(_lang_of(p) == lang for p in found), f"{lang}: {query!r} -> {found}"


def test_search_with_diacritics_ranks_exact_words_first(browser: Browser) -> None:
    """A query typed with diacritics is also searched folded, so "luồng" (thread) finds every
    page "luong" finds (thông lượng, throughput, too); the page titled with the exact word still
    comes first."""
    meta, results = _search_results(browser, "vi", "luồng")
    folded_meta, folded = _search(browser, "vi", "luong")
    # Material lists the first results only (more on scrolling) and says how many match in
    # all: the two queries match the same number of pages.
    assert re.findall(r"\d+", meta) == re.findall(r"\d+", folded_meta), (meta, folded_meta)
    assert results and folded, (meta, folded_meta)
    first = results[0][1].splitlines()[0].lower()
    assert "luồng" in first, [text[:80] for _, text in results[:5]]
