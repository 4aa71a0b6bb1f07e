"""Rewrite the glossary tables from ``overrides/glossary.yml``: ``python -m tools glossary``.

Writes ``snippets/glossary/terms.md``, ``terms.vi.md`` and ``terms.zh.md`` (or into
``--out DIR``). The generator itself lives in the site hook ``overrides/hooks/glossary.py``,
which also warns during a build when the committed tables are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "overrides" / "hooks"))
    import glossary  # the generator, shared with the build hook

    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else glossary.OUT_DIR
    try:
        for written in glossary.write(out):
            print(written)
    except glossary.GlossaryError as e:
        print(f"overrides/glossary.yml: {e}", file=sys.stderr)
        return 1
    return 0
