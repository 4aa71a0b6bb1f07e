"""``python -m tools <verb> [args...]``: the one entry point of the handbook's tooling."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent


def verbs() -> dict[str, str]:
    """Each verb module's name and the first line of its docstring."""
    found = {}
    for info in pkgutil.iter_modules([str(PACKAGE)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"tools.{info.name}")
        if hasattr(module, "main"):
            # a verb is spelled with hyphens: tools/time_build.py is `time-build`
            first_line = (module.__doc__ or "").strip().splitlines()[0:1] or [""]
            found[info.name.replace("_", "-")] = first_line
    return {name: lines[0] for name, lines in sorted(found.items())}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print("usage: python -m tools <verb> [args...]\n\nverbs:")
        for name, line in verbs().items():
            print(f"  {name:<14} {line}")
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in verbs():
        print(f"tools: no verb {verb!r}; run `python -m tools` for the list", file=sys.stderr)
        return 2
    return importlib.import_module(f"tools.{verb.replace('-', '_')}").main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
