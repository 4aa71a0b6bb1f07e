"""Mark translations fresh: record the hash of their English page (``source_hash``).

``python -m tools stamp docs/quickstart.vi.md docs/quickstart.zh.md`` -- run it only after the
translation really matches the English page; ``tests/test_docs.py`` fails on a stale hash.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pages  # noqa: E402  (the pages as data, shared with the tests)


def stamp(path: Path) -> str:
    """Write the English page's hash into the translation's front matter; return it."""
    page = pages.load(path)
    if page.lang == "en":
        raise ValueError(f"{path}: only translations carry a source_hash")
    new = pages.english_hash(page.topic)
    text = path.read_text("utf-8")
    front = pages.FRONT_MATTER_RE.match(text)
    if front and pages.SOURCE_HASH_RE.search(front["body"]):
        text = pages.SOURCE_HASH_RE.sub(f"source_hash: {new}", text, count=1)
    elif front:
        text = text.replace("---\n", f"---\nsource_hash: {new}\n", 1)
    else:
        text = f"---\nsource_hash: {new}\n---\n\n{text}"
    path.write_text(text, "utf-8")
    return new


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tools stamp docs/<topic>.vi.md docs/<topic>.zh.md ...",
              file=sys.stderr)
        return 2
    for arg in argv:
        try:
            print(f"{arg}: source_hash {stamp(Path(arg).resolve())}")
        except (ValueError, OSError) as e:
            print(e, file=sys.stderr)
            return 1
    return 0
