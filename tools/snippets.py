"""Snippet addresses as a page writes them: ``topic/file`` or ``topic/file:section``.

The one parser of those addresses, used by the tests (``tests/harness.py``, ``tests/pages.py``,
``tests/test_docs.py``) and by the tooling. Run as a verb it resolves addresses and prints the
snippet text: ``python -m tools snippets concurrency/main.py benchmarks/main.py:app``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "snippets"

#: An include line in a page: ``--8<-- "topic/file"`` or ``--8<-- "topic/file:section"``.
INCLUDE_RE = re.compile(r'^[ \t]*-{1,}8<-{1,}[ \t]+"(?P<target>[^"]+)"[ \t]*$')
#: Anything that looks like an include marker (to report malformed ones).
ANY_INCLUDE_RE = re.compile(r"-{1,}8<-{1,}")
#: A section marker inside a snippet file.
SECTION_MARKER_RE = re.compile(r"--8<-- \[(?P<kind>start|end):(?P<name>[\w-]+)\]")
#: A translated variant's language suffix: ``chart.vi.mmd`` is a variant of ``chart.mmd``.
LANG_SUFFIX_RE = re.compile(r"\.(vi|zh)(\.\w+)$")


class AddressError(ValueError):
    """An address names no snippet file, or a section the file does not have."""


@dataclass(frozen=True)
class Address:
    """``topic/file[:section]``, split once, the same way everywhere."""

    target: str  # as written on the page
    file: str  # "topic/file"
    section: str | None

    @property
    def path(self) -> Path:
        return SNIPPETS / self.file

    @property
    def topic(self) -> str:
        return self.file.split("/", 1)[0]

    @property
    def shared_name(self) -> str:
        """The address with any language suffix removed (diagrams may be translated)."""
        return LANG_SUFFIX_RE.sub(r"\2", self.target)


def parse(target: str) -> Address:
    """Split an address into file and section; nothing is read from disk."""
    name, sep, section = target.partition(":")
    return Address(target=target, file=name, section=section if sep and section else None)


def shared_file(name: str) -> str:
    """``topic/chart.vi.mmd`` -> ``topic/chart.mmd``: the file a translated variant stands for."""
    return LANG_SUFFIX_RE.sub(r"\2", name)


def section_names(path: Path) -> set[str]:
    """The sections a snippet file defines with both a start and an end marker."""
    text = path.read_text("utf-8", errors="replace")
    found: dict[str, set[str]] = {"start": set(), "end": set()}
    for m in SECTION_MARKER_RE.finditer(text):
        found[m["kind"]].add(m["name"])
    return found["start"] & found["end"]


def strip_section_markers(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(line for line in lines if not SECTION_MARKER_RE.search(line))


def text_of(address: Address | str) -> str:
    """What the page shows for the address: the file or its section, without markers."""
    address = parse(address) if isinstance(address, str) else address
    if not address.path.is_file():
        raise AddressError(
            f"snippets/{address.file}: no such snippet file (referenced as {address.target!r})"
        )
    text = address.path.read_text("utf-8")
    if address.section is None:
        return strip_section_markers(text)
    name = re.escape(address.section)
    start = re.search(rf"--8<-- \[start:{name}\]\s*\n", text)
    end = re.search(rf"\n[^\n]*--8<-- \[end:{name}\]", text)
    if not start or not end or end.start() < start.end():
        raise AddressError(
            f"snippets/{address.file}: section {address.section!r} not found "
            f"(expected '--8<-- [start:{address.section}]' ... '--8<-- [end:{address.section}]')"
        )
    return strip_section_markers(text[start.end() : end.start() + 1])


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    for target in argv:
        try:
            sys.stdout.write(text_of(target))
        except AddressError as e:
            print(e, file=sys.stderr)
            return 1
    return 0
