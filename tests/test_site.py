"""The built site: every page in every language, each showing the versions it was verified with."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path

import pytest

import pages
from pages import LANGS

pytestmark = pytest.mark.xdist_group("site")

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
def test_page_is_built_with_versions_and_language_links(built_site: Path, topic: str, lang: str) -> None:
    path = built_page(built_site, topic, lang)
    assert path.is_file(), f"{pages.page_path(topic, lang).relative_to(pages.ROOT)}: not built to {path}"
    html = path.read_text("utf-8")
    banner = re.search(r'<div class="hb-verified" data-hb-verified>(.*?)</div>', html, re.S)
    assert banner, f"{path}: no versions banner"
    for name in VERIFIED:
        assert f"{name} {version(name)}" in banner[1], f"{path}: banner lacks {name} {version(name)}"
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
            assert href.rstrip("/").endswith(str(expected.parent.relative_to(built_site)).rstrip(".")), href
