"""Rewrite a page's generated tables from its committed data: ``python -m tools render TARGET``.

TARGET as for ``measure`` (benchmarks, concurrency, memory, sweep). Nothing is measured, so
the load guard does not run; use it after changing how a table is written.
"""

from __future__ import annotations

import sys

from tools import measure


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in measure.TARGETS:
        print(f"usage: python -m tools render {{{'|'.join(measure.TARGETS)}}}", file=sys.stderr)
        return 2
    target = measure.TARGETS[argv[0]]
    return measure.render(target, measure.SNIPPETS / target.folder)
