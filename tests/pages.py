"""The handbook's pages as data: languages, fences, includes, headings, links, test references.

Used by tests/test_docs.py (which checks the rules) and by the tooling: after updating a
translation, ``python -m tools stamp docs/quickstart.vi.md`` records it as fresh (see
``tools/stamp.py``). Snippet addresses are parsed by ``tools/snippets.py``, the one parser.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from markdown.extensions.toc import slugify

from tools import snippets as addresses

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"
TESTS = ROOT / "tests"
LANGS = ("en", "vi", "zh")  # en is the default: page.md; the others are page.<lang>.md
TRANSLATIONS = LANGS[1:]

FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
INCLUDE_RE = addresses.INCLUDE_RE
ANY_INCLUDE_RE = addresses.ANY_INCLUDE_RE
HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<text>.+?)[ \t]*$")
ATTR_ID_RE = re.compile(r"\{[^}]*#(?P<id>[\w-]+)[^}]*\}\s*$")
LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
TEST_REF_RE = re.compile(r"tests/(?P<file>test_\w+\.py)::(?P<name>\w+)")
FRONT_MATTER_RE = re.compile(r"\A---\n(?P<body>.*?)\n---\n", re.S)
SOURCE_HASH_RE = re.compile(r"^source_hash:\s*(?P<hash>\S+)\s*$", re.M)
#: An inline code span that is really a command (it belongs in a snippet).
INLINE_COMMAND_RE = re.compile(
    r"`(?P<code>(?:uvicorn|gunicorn|pip|uv|docker|kubectl|curl|locust|fastapi|python3?|granian|"
    r"hypercorn|daphne|export|mkdocs|pytest|hadolint)\s+[^`]*\s[^`]*)`"
)


class PageError(AssertionError):
    pass


@dataclass(frozen=True)
class Include:
    line: int
    target: str  # as written: "topic/file" or "topic/file:section"
    in_fence: bool

    @property
    def address(self) -> addresses.Address:
        return addresses.parse(self.target)

    @property
    def file(self) -> str:
        return self.address.file

    @property
    def section(self) -> str | None:
        return self.address.section

    @property
    def shared_name(self) -> str:
        """The include with any language suffix removed (diagrams may be translated)."""
        return self.address.shared_name


@dataclass
class Page:
    path: Path
    lang: str
    lines: list[str] = field(repr=False)

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(ROOT))

    @property
    def topic(self) -> str:
        return page_topic(self.path)

    def at(self, line: int) -> str:
        return f"{self.rel}:{line}"

    # ---- structure
    def fences(self) -> list[tuple[int, str, list[tuple[int, str]]]]:
        """(opening line, info string, [(line, body line), ...]) for every fenced block."""
        found, open_ = [], None
        for no, line in enumerate(self.lines, 1):
            m = FENCE_RE.match(line)
            if open_ is None:
                if m:
                    open_ = (no, m["indent"], m["fence"], m["info"].strip(), [])
            else:
                start, indent, fence, info, body = open_
                if (
                    m
                    and m["fence"][0] == fence[0]
                    and len(m["fence"]) >= len(fence)
                    and not m["info"].strip()
                ):
                    found.append((start, info, body))
                    open_ = None
                else:
                    body.append((no, line))
        if open_ is not None:
            raise PageError(f"{self.at(open_[0])}: code fence is never closed")
        return found

    def fence_lines(self) -> set[int]:
        inside = set()
        for start, _, body in self.fences():
            inside.add(start)
            inside.update(no for no, _ in body)
            inside.add((body[-1][0] if body else start) + 1)
        return inside

    def includes(self) -> list[Include]:
        inside = self.fence_lines()
        out = []
        for no, line in enumerate(self.lines, 1):
            m = INCLUDE_RE.match(line)
            if m:
                out.append(Include(no, m["target"], no in inside))
            elif ANY_INCLUDE_RE.search(line) and not line.lstrip().startswith("<!--"):
                raise PageError(
                    f'{self.at(no)}: malformed include {line.strip()!r}; write --8<-- "topic/file"'
                )
        return out

    def headings(self) -> list[tuple[int, int, str, str | None]]:
        """(line, level, text, explicit id or None) outside fences."""
        inside = self.fence_lines()
        out = []
        for no, line in enumerate(self.lines, 1):
            if no in inside:
                continue
            m = HEADING_RE.match(line)
            if m:
                idm = ATTR_ID_RE.search(m["text"])
                text = ATTR_ID_RE.sub("", m["text"]).strip()
                out.append((no, len(m["hashes"]), text, idm["id"] if idm else None))
        return out

    def anchors(self) -> list[str]:
        return [hid or slugify(text, "-") for _, level, text, hid in self.headings() if level > 1]

    def fragment_anchors(self) -> list[str]:
        """Ids that included Markdown fragments put on the page (``{ #id }``, ``id="..."``)."""
        found = []
        for inc in self.includes():
            path = SNIPPETS / inc.file
            if not inc.in_fence and path.suffix == ".md" and path.is_file():
                text = path.read_text("utf-8")
                found += re.findall(r"\{[^}\n]*#([\w-]+)[^}\n]*\}|id=\"([\w-]+)\"", text)
        return [a or b for a, b in found]

    def title(self) -> str | None:
        for _, level, text, _ in self.headings():
            if level == 1:
                return text
        return None

    def prose_lines(self) -> list[tuple[int, str]]:
        inside = self.fence_lines()
        body_start = self.front_matter_end()
        return [
            (no, ln) for no, ln in enumerate(self.lines, 1) if no not in inside and no > body_start
        ]

    def links(self) -> list[tuple[int, str]]:
        return [(no, m["target"]) for no, ln in self.prose_lines() for m in LINK_RE.finditer(ln)]

    def test_refs(self) -> list[tuple[int, str, str]]:
        return [
            (no, m["file"], m["name"])
            for no, ln in self.prose_lines()
            for m in TEST_REF_RE.finditer(ln)
        ]

    def claim(self, test_name: str) -> str:
        """The paragraph or list item that cites ``test_name``: the sentence a test checks
        against its data (so that a number in prose is compared with the data, not retyped)."""
        prose = dict(self.prose_lines())
        cited = [no for no, ln in prose.items() if f"::{test_name}`" in ln]
        if not cited:
            raise PageError(f"{self.rel}: no paragraph cites {test_name}")
        starts_item = re.compile(r"^\s*(?:[-*]|\d+\.)\s")
        first = last = cited[0]
        def joins(no: int) -> bool:  # a line of the same paragraph or list item
            return no in prose and bool(prose[no].strip())

        while joins(first - 1) and not starts_item.match(prose[first]):
            first -= 1
        while joins(last + 1) and not starts_item.match(prose[last + 1]):
            last += 1
        return " ".join(prose[no].strip() for no in range(first, last + 1))

    def front_matter_end(self) -> int:
        m = FRONT_MATTER_RE.match("\n".join(self.lines) + "\n")
        return m.group(0).count("\n") if m else 0

    def source_hash(self) -> tuple[int, str | None]:
        text = "\n".join(self.lines) + "\n"
        m = FRONT_MATTER_RE.match(text)
        if m:
            h = SOURCE_HASH_RE.search(m["body"])
            if h:
                line = text[: m.start("body") + h.start()].count("\n") + 1
                return line, h["hash"]
        return 1, None


def page_topic(path: Path) -> str:
    name = path.name
    for lang in TRANSLATIONS:
        if name.endswith(f".{lang}.md"):
            return str(path.relative_to(DOCS))[: -len(f".{lang}.md")]
    return str(path.relative_to(DOCS))[: -len(".md")]


def lang_of(path: Path) -> str:
    for lang in TRANSLATIONS:
        if path.name.endswith(f".{lang}.md"):
            return lang
    return "en"


def page_path(topic: str, lang: str) -> Path:
    return DOCS / (f"{topic}.md" if lang == "en" else f"{topic}.{lang}.md")


@cache
def load(path: Path) -> Page:
    return Page(path, lang_of(path), path.read_text("utf-8").splitlines())


def topics() -> list[str]:
    """Every page topic: an English page, or a translation whose English page is missing."""
    return sorted({page_topic(p) for p in DOCS.rglob("*.md")})


def all_pages() -> list[Page]:
    return [load(p) for p in sorted(DOCS.rglob("*.md"))]


def english_hash(topic: str) -> str:
    return hashlib.sha256(page_path(topic, "en").read_bytes()).hexdigest()[:12]


def snippet_files() -> list[Path]:
    return sorted(p for p in SNIPPETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


section_names = addresses.section_names
