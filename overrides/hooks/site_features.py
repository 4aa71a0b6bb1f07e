"""MkDocs hook: what a reader expects of the site that Material and mkdocs-static-i18n do not
give as they are. Each part is checked by tests/test_site.py and tests/test_browser.py.

* Search in the reader's language. The i18n plugin builds one search index for all three
  languages. Every page tells the search worker its language and the URL prefix of each
  language (``hb_lang``, ``hb_search_scopes``); overrides/main.html hands Material's own
  worker to ``assets/javascripts/workers/hb-search.js``, which keeps only that language's
  documents before Material's worker indexes them. Chinese words are found inside longer runs
  of text because Material segments Chinese with jieba at build time (jieba is in uv.lock).
* Mermaid offline. Material loads Mermaid from a CDN unless ``window.mermaid`` exists. The
  ``artoo-mermaid`` package in uv.lock ships Mermaid's ``mermaid.min.js``; this hook checks
  it is byte-identical to the npm release (``MERMAID_SHA256``) and copies it into the site,
  and main.html loads it on pages that have a diagram.
* A 404 page per language. MkDocs writes ``404.html`` once per language build, each over the
  last, so the root one ended up in Chinese with the language links of the last page built.
  Here each language keeps its own (``/vi/404.html``, ``/zh/404.html``), the root one stays
  English, and every 404 page's language links point at the language home pages.
* A sitemap per language. The root ``sitemap.xml`` lists every page with its hreflang
  alternates; ``/vi/sitemap.xml`` and ``/zh/sitemap.xml`` list that language's pages (a
  sitemap may only list URLs under its own folder). Material's language selector fetches them.
* The headings' permalink title in the page's language. Python-Markdown's ``toc`` writes
  ``title="Permanent link"`` on every heading's ¶ link, and markdown_extensions cannot differ
  per language; each language's ``extra.permalink_title`` (mkdocs.yml) replaces it.
  (The light/dark toggle's tooltips are per-language ``theme.palette`` overrides there.)
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import shutil
from html import escape
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("mkdocs.hooks.site")

MERMAID_DIST = "artoo-mermaid"
MERMAID_VERSION = "11.16.0"
MERMAID_FILE = "artoo_mermaid/assets/mermaid.min.js"
#: sha256 of dist/mermaid.min.js in the npm package mermaid@11.16.0 (checked with `npm pack`).
MERMAID_SHA256 = "74d7c46dabca328c2294733910a8aa1ed0c37451776e8d5295da38a2b758fb9b"
MERMAID_DEST = "assets/javascripts/mermaid.min.js"

_root_404: bytes | None = None
_mermaid_checked: dict[Path, str] = {}


# --------------------------------------------------------------------------- languages


def _i18n(config):
    plugin = config.plugins.get("i18n")
    if plugin is None:
        raise RuntimeError("overrides/hooks/site_features.py needs the i18n plugin")
    return plugin


def languages(config) -> dict[str, str]:
    """Each built language and the URL prefix of its pages: {"en": "", "vi": "vi/", ...}."""
    return {
        lang.locale: "" if lang.default else f"{lang.locale}/"
        for lang in _i18n(config).config.languages
        if lang.build
    }


def current_language(config) -> str:
    plugin = _i18n(config)
    return plugin.current_language or plugin.default_language


def _base_path(config) -> str:
    return urlsplit(config.site_url or "").path.rstrip("/")


# --------------------------------------------------------------------------- events


def on_env(env, config, files):
    env.globals["hb_lang"] = current_language(config)
    env.globals["hb_search_scopes"] = languages(config)
    return env


def on_page_content(html, page, config, files):
    english = config.mdx_configs.get("toc", {}).get("permalink_title", "Permanent link")
    title = config.extra.get("permalink_title") or english
    if title != english:
        html = html.replace(f'title="{english}"', f'title="{escape(title, quote=True)}"')
    return html


def on_template_context(context, template_name, config):
    if template_name == "404.html":
        # Not a page, so the i18n plugin left the language links of whatever it built last.
        names = {lang.locale: lang.name for lang in _i18n(config).config.languages}
        base = _base_path(config)
        homes = [
            {"name": names[code], "link": f"{base}/{prefix}", "lang": code}
            for code, prefix in languages(config).items()
        ]
        # The i18n plugin sets it as an attribute on pages, which templates see first.
        config.extra["alternate"] = homes
        config.extra.alternate = homes
    return context


def on_post_build(config):
    global _root_404
    site = Path(config.site_dir)
    prefix = languages(config)[current_language(config)]
    root_404 = site / "404.html"
    # Every build copies the theme folder's files, glossary.yml too: it is data, not the site.
    (site / "glossary.yml").unlink(missing_ok=True)
    if not prefix:
        _root_404 = root_404.read_bytes() if root_404.is_file() else None
        copy_mermaid(site)
        return
    # A translation's build wrote its 404 page and sitemap over the root ones.
    if root_404.is_file():
        (site / prefix).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root_404, site / prefix / "404.html")
        if _root_404 is not None:
            root_404.write_bytes(_root_404)
    write_language_sitemap(site, config, prefix)


# --------------------------------------------------------------------------- parts


def mermaid_source() -> Path:
    try:
        path = Path(distribution(MERMAID_DIST).locate_file(MERMAID_FILE))
    except PackageNotFoundError:
        raise RuntimeError(
            f"{MERMAID_DIST} is not installed; it is in uv.lock: run the README's commands "
            "(python3 -m uv run --frozen ...)"
        ) from None
    if not path.is_file():
        raise RuntimeError(f"{MERMAID_DIST} has no {MERMAID_FILE}")
    return path


def copy_mermaid(site: Path) -> Path:
    source = mermaid_source()
    if source not in _mermaid_checked:
        _mermaid_checked[source] = hashlib.sha256(source.read_bytes()).hexdigest()
    if _mermaid_checked[source] != MERMAID_SHA256:
        log.warning(
            f"{source}: sha256 {_mermaid_checked[source]} is not Mermaid {MERMAID_VERSION}'s "
            f"({MERMAID_SHA256}); not copying it"
        )
        return source
    dest = site / MERMAID_DEST
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.is_file() or dest.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, dest)
    notice = source.with_name("NOTICE.md")
    if notice.is_file():
        shutil.copyfile(notice, dest.with_name("mermaid.NOTICE.md"))
    return dest


_URL_RE = re.compile(r"\s*<url>.*?</url>", re.S)
_LOC_RE = re.compile(r"<loc>([^<]+)</loc>")


def write_language_sitemap(site: Path, config, prefix: str) -> None:
    root = site / "sitemap.xml"
    if not root.is_file():
        return
    text = root.read_text("utf-8")
    start = f"{_base_path(config)}/{prefix}"
    urls = [
        m[0] for m in _URL_RE.finditer(text)
        if urlsplit(_LOC_RE.search(m[0])[1]).path.startswith(start)
    ]
    head = text[: text.index("<url>")].rstrip() if "<url>" in text else text.split("</urlset>")[0]
    body = head + "".join(urls) + "\n</urlset>\n"
    (site / prefix / "sitemap.xml").write_text(body, "utf-8")
    (site / prefix / "sitemap.xml.gz").write_bytes(gzip.compress(body.encode("utf-8"), mtime=0))
