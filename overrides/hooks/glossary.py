"""The glossary page's tables, generated from overrides/glossary.yml (never typed three times).

``python -m tools glossary`` (tools/glossary.py) (re)writes ``snippets/glossary/terms.md``,
``terms.vi.md`` and ``terms.zh.md``; each glossary page includes its language's file.
Registered as a MkDocs hook, it refuses a build whose tables are stale (a warning, so
``--strict`` fails), and ``tests/test_glossary.py`` checks the same.

Every language's table has the same rows in the same order with the same anchors
(``glossary.md#worker``), the three terms side by side, the words each language avoids
struck through, and the definition in the page's language.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "overrides" / "glossary.yml"
OUT_DIR = ROOT / "snippets" / "glossary"
LANGS = ("en", "vi", "zh")
#: Column headings: the three languages by their own names (as in the language switcher),
#: then "meaning" in the page's language.
HEADERS = {
    "en": ("English", "Tiếng Việt", "中文", "Meaning"),
    "vi": ("English", "Tiếng Việt", "中文", "Nghĩa"),
    "zh": ("English", "Tiếng Việt", "中文", "释义"),
}
NOTICE = "<!-- Generated from overrides/glossary.yml by overrides/hooks/glossary.py. -->"

log = logging.getLogger("mkdocs.hooks.glossary")


@dataclass(frozen=True)
class Term:
    term: str
    words: dict[str, str]  # lang -> the term as written in that language
    avoid: dict[str, tuple[str, ...]]  # lang -> words that language must not use
    define: dict[str, str]  # lang -> one-line definition

    @property
    def anchor(self) -> str:
        """``I/O-bound`` -> ``io-bound``, ``thread pool`` -> ``thread-pool``."""
        return re.sub(r"[^a-z0-9]+", "-", self.term.lower().replace("/", "")).strip("-")


class GlossaryError(ValueError):
    pass


def load(path: Path = GLOSSARY) -> list[Term]:
    """The glossary's terms, in file order; a malformed entry is an error naming it."""
    data = yaml.safe_load(path.read_text("utf-8"))
    terms, anchors = [], set()
    for i, raw in enumerate(data.get("terms") or [], 1):
        name = raw.get("term") or f"entry {i}"
        missing = [k for k in ("term", *LANGS) if not raw.get(k)]
        missing += [f"define.{lang}" for lang in LANGS if not (raw.get("define") or {}).get(lang)]
        if missing:
            raise GlossaryError(f"{path}: term {name!r} lacks {', '.join(missing)}")
        avoid = raw.get("avoid") or {}
        unknown = set(avoid) - set(LANGS)
        if unknown:
            raise GlossaryError(f"{path}: term {name!r}: avoid names unknown languages {unknown}")
        term = Term(
            term=str(raw["term"]),
            words={lang: str(raw[lang]) for lang in LANGS},
            avoid={lang: tuple(str(w) for w in avoid.get(lang) or ()) for lang in LANGS},
            define={lang: " ".join(str(raw["define"][lang]).split()) for lang in LANGS},
        )
        if term.anchor in anchors:
            raise GlossaryError(f"{path}: two terms share the anchor #{term.anchor} ({name!r})")
        anchors.add(term.anchor)
        terms.append(term)
    if not terms:
        raise GlossaryError(f"{path}: no terms")
    return terms


def _cell(text: str) -> str:
    return text.replace("|", r"\|")


def render(lang: str, terms: list[Term] | None = None) -> str:
    """The Markdown table the glossary page in ``lang`` includes."""
    terms = load() if terms is None else terms
    head = HEADERS[lang]
    # The class lets overrides/assets/stylesheets/handbook.css stack each row on a phone.
    lines = [NOTICE, "", '<div class="hb-glossary" markdown>', "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in terms:
        cells = []
        for col in LANGS:
            word = _cell(t.words[col])
            if col == "en":
                word = f"**{word}**{{ #{t.anchor} }}"
            struck = " ".join(f"<del>{_cell(w)}</del>" for w in t.avoid[col])
            cells.append(f"{word}<br>{struck}" if struck else word)
        cells.append(_cell(t.define[lang]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "</div>"]
    return "\n".join(lines) + "\n"


def fragment_path(lang: str, out_dir: Path = OUT_DIR) -> Path:
    return out_dir / ("terms.md" if lang == "en" else f"terms.{lang}.md")


def stale_fragments(out_dir: Path = OUT_DIR) -> list[Path]:
    terms = load()
    return [
        fragment_path(lang, out_dir)
        for lang in LANGS
        if not fragment_path(lang, out_dir).is_file()
        or fragment_path(lang, out_dir).read_text("utf-8") != render(lang, terms)
    ]


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    terms = load()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for lang in LANGS:
        path = fragment_path(lang, out_dir)
        path.write_text(render(lang, terms), "utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------- MkDocs hook


_reported: set[str] = set()


def on_pre_build(config, **kwargs) -> None:
    # Runs once per language build; say each problem once per change of the files.
    state = "".join(
        f"{p}:{p.stat().st_mtime_ns}" for p in (GLOSSARY, *map(fragment_path, LANGS)) if p.exists()
    )
    if state in _reported:
        return
    _reported.add(state)
    try:
        stale = stale_fragments()
    except (GlossaryError, yaml.YAMLError) as exc:
        log.warning(f"glossary: {exc}")
        return
    for path in stale:
        log.warning(
            f"glossary: {path.relative_to(ROOT)} is stale (overrides/glossary.yml changed); "
            "regenerate it with `python -m tools glossary`"
        )

