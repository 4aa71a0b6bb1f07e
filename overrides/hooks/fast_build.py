"""MkDocs hook: the same site with less work, for the editing loop (issue #15).

A profile of the build found most of its time in work that is done again with the same
input: each code block highlighted once per language, Material's search plugin walking every
token of every highlighted line, the theme's templates compiled once per language and again
on every ``mkdocs serve`` rebuild, and jieba's dictionary (about a second to load) loaded by a
Vietnamese-only build for the few Chinese words on its glossary page. This hook removes that
work and keeps the output:

* **Highlighted code, by content.** Pygments' result depends only on the code, the lexer and
  the formatter's options; it is kept (bounded) and reused, across the three languages of a
  build and across ``mkdocs serve`` rebuilds, where only the edited snippet is highlighted
  again.
* **The search plugin's HTML walk.** Material's search indexer parses each page's HTML with
  Python's ``html.parser``; highlighted code is mostly ``<span class="...">`` tags, which the
  indexer drops while keeping their text. They are removed from ``<pre>`` blocks before it
  parses (its text, and so the index, is the same), and what a page's HTML gives is kept by
  content, so a rebuild parses only the pages that changed.
* **Compiled templates.** Each build makes a new Jinja environment that compiles the theme's
  templates again; Jinja's bytecode cache, keyed by each template's source, is shared between
  the builds of a process and kept in ``.cache/jinja-bytecode/`` (compiled code, like ``.pyc``
  files) for the next process.
* **Chinese segmentation only in builds that include Chinese.** Material runs jieba on every
  run of Chinese characters in the index. The full build (and any build with ``zh``) does as
  before; a build of other languages only (``HANDBOOK_LANGUAGES=vi``, the editing loop)
  leaves the glossary's Chinese column unsegmented in its index instead of loading jieba's
  dictionary.

The generated HTML has no per-line anchors in code blocks either, but that is mkdocs.yml's
``pymdownx.highlight`` options, not this hook.

``HANDBOOK_FAST_BUILD=0`` turns all of it off. ``tests/test_site.py`` builds the Chinese
site that way and checks that every page and every search entry is the same as in the full
build (``test_fast_build_changes_no_page_and_no_search_entry``).

It replaces four names in code it does not own (``pymdownx.highlight.highlight``, Pygments'
``HtmlFormatter._create_stylesheet``, and ``Parser`` and ``jieba`` in Material's search plugin);
if a new release lacks one, the build warns (so ``--strict`` fails) and names this file. State
lives on the replaced functions and in a module registered in ``sys.modules``, so it survives
``mkdocs serve``, which executes hook files again on every rebuild.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import sys
import types
from collections import OrderedDict
from pathlib import Path

import jinja2
from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.fast_build")

VAR = "HANDBOOK_FAST_BUILD"
ROOT = Path(__file__).resolve().parents[2]
BYTECODE_DIR = ROOT / ".cache" / "jinja-bytecode"
_STATE_MODULE = "_handbook_fast_build_state"


def enabled() -> bool:
    return os.environ.get(VAR, "1").strip().lower() not in ("0", "off", "no", "false")


def _state() -> types.ModuleType:
    """One place per process that outlives this file being executed again by `mkdocs serve`."""
    state = sys.modules.get(_STATE_MODULE)
    if state is None:
        state = types.ModuleType(_STATE_MODULE)
        state.originals = {}  # (module or class, attribute) -> what this hook replaced
        state.templates = {}  # Jinja bucket key -> (source checksum, bytecode)
        sys.modules[_STATE_MODULE] = state
    return state


class _Bounded(OrderedDict):
    """A dict that forgets its least recently used entries past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def get_fresh(self, key):
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def _patch(owner, name: str, make) -> None:
    """Replace ``owner.name`` (a module's or a class's) with ``make(original)``, once per
    process."""
    originals = _state().originals
    if (owner, name) not in originals:
        originals[(owner, name)] = getattr(owner, name)
        setattr(owner, name, make(originals[(owner, name)]))


def _unpatch_all() -> None:
    originals = _state().originals
    for (owner, name), original in list(originals.items()):
        setattr(owner, name, original)
        del originals[(owner, name)]


# --------------------------------------------------------------------------- highlighting

_PLAIN = (str, int, float, bool, type(None))


def _frozen(options: dict):
    """A hashable copy of a Pygments options dict, or None if a value is not plain data."""
    items = []
    for key, value in sorted(options.items()):
        if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
            value = ("seq", *value)
        elif not isinstance(value, _PLAIN):
            return None
        items.append((key, value))
    return tuple(items)


def _memo_highlight(original):
    cache = _Bounded(2048)  # the site has some 400 distinct code blocks

    def highlight(code, lexer, formatter, outfile=None):
        lexer_options, formatter_options = _frozen(lexer.options), _frozen(formatter.options)
        if outfile is not None or lexer_options is None or formatter_options is None \
                or lexer.filters:
            return original(code, lexer, formatter, outfile)
        key = (code, type(lexer), lexer_options, type(formatter), formatter_options)
        html = cache.get_fresh(key)
        if html is None:
            html = original(code, lexer, formatter)
            cache.put(key, html)
        return html

    highlight.cache = cache
    return highlight


def _memo_stylesheet(original):
    """Pygments' HtmlFormatter maps every token type of its style to a CSS class when it is
    made, once per code block; the map depends only on the style and the class prefix."""
    cache = {}

    def _create_stylesheet(self):
        key = (type(self), self.style, self.classprefix)
        if key not in cache:
            original(self)
            cache[key] = (self.ttype2class, self.class2style)
        t2c, c2s = cache[key]
        self.ttype2class, self.class2style = dict(t2c), dict(c2s)

    return _create_stylesheet


# --------------------------------------------------------------------------- search

_PRE = re.compile(r"<pre\b[^>]*>.*?</pre>", re.S)
_SPAN_OPEN = re.compile(r'<span(?: class="[^"<>]*")?>')
_SPAN = re.compile(r'<span(?: class="[^"<>]*")?>|</span>')


def plain_code(html: str) -> str:
    """``html`` without the ``<span>`` tags Pygments writes inside its ``<pre>`` blocks.

    Material's indexer keeps no ``<span>`` tag, only the text inside it, so it sees the same
    text with or without them. Only bare and class-only spans go; a ``<pre>`` block with any
    other kind of ``<span>`` (an id, a ``data-search-exclude``) is left as it is.
    """

    def strip(match: re.Match) -> str:
        block = match[0]
        if block.count("<span") != len(_SPAN_OPEN.findall(block)):
            return block
        return _SPAN.sub("", block)

    return _PRE.sub(strip, html)


def _caching_parser(original):
    cache = _Bounded(160)  # two full builds of pages (25 pages in 3 languages)

    class Parser(original):
        """Material's search Parser: parses plain_code(html), once per distinct page HTML."""

        def feed(self, data: str) -> None:
            sections = cache.get_fresh(data)
            if sections is None:
                super().feed(plain_code(data))
                super().close()
                sections = self.data
                cache.put(data, sections)
            # The plugin fills in an empty section title later: hand out copies.
            self.data = [_copy_section(s) for s in sections]

        def close(self) -> None:
            pass  # feed() has parsed everything

    Parser.cache = cache
    return Parser


def _copy_section(section):
    clone = copy.copy(section)
    clone.title = list(section.title)
    clone.text = list(section.text)
    return clone


# --------------------------------------------------------------------------- templates


class _SharedBytecode(jinja2.FileSystemBytecodeCache):
    """Compiled templates, kept in this process and in ``.cache/jinja-bytecode/`` (Jinja's own
    file cache, written atomically), keyed by the template's path, its source checksum and the
    environment's extensions. Like Python's ``.pyc`` files: compiled code, not content."""

    def __init__(self, store: dict, directory: Path, salt: str) -> None:
        self.store = store
        self.salt = salt
        try:
            directory.mkdir(parents=True, exist_ok=True)
            super().__init__(str(directory))
            self.on_disk = os.access(directory, os.W_OK)
        except OSError:
            self.on_disk = False

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        return super().get_cache_key(f"{name}|{self.salt}", filename)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        checksum, code = self.store.get(bucket.key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code
        elif self.on_disk:
            super().load_bytecode(bucket)  # Jinja checks its magic and the checksum
            if bucket.code is not None:
                self.store[bucket.key] = (bucket.checksum, bucket.code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self.store[bucket.key] = (bucket.checksum, bucket.code)
        if self.on_disk:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)


# --------------------------------------------------------------------------- hook events


def _built_languages(config) -> list[str]:
    i18n = config.plugins.get("i18n")
    if i18n is None:
        return []
    return [lang.locale for lang in i18n.config.languages if lang.build]


@event_priority(-100)  # after overrides/hooks/languages.py has chosen the languages
def on_config(config):
    try:
        import pymdownx.highlight as highlight_module
        from material.plugins.search import plugin as search_module
        from pygments.formatters.html import HtmlFormatter
    except ImportError as exc:  # pragma: no cover - both are in uv.lock
        log.warning(f"fast_build: {exc}")
        return config
    if not enabled():
        _unpatch_all()
        return config
    if not hasattr(highlight_module, "highlight") or not hasattr(search_module, "Parser") \
            or not hasattr(search_module, "jieba") \
            or not hasattr(HtmlFormatter, "_create_stylesheet"):
        log.warning("fast_build: pymdownx.highlight, Pygments' HtmlFormatter or Material's "
                    "search plugin no longer has the names this hook wraps (highlight, "
                    "_create_stylesheet, Parser, jieba); update "
                    "overrides/hooks/fast_build.py for the new versions, or build with "
                    f"{VAR}=0")
        return config
    _patch(highlight_module, "highlight", _memo_highlight)
    _patch(HtmlFormatter, "_create_stylesheet", _memo_stylesheet)
    _patch(search_module, "Parser", _caching_parser)
    # jieba: the module Material imported, restored whenever a build includes Chinese.
    _patch(search_module, "jieba", lambda original: original)
    jieba = _state().originals[(search_module, "jieba")]
    languages = _built_languages(config)
    search_module.jieba = jieba if (not languages or "zh" in languages) else None
    return config


def on_env(env, config, files):
    if enabled() and env.bytecode_cache is None:
        salt = ",".join(sorted(env.extensions)) + f"|jinja2 {jinja2.__version__}"
        env.bytecode_cache = _SharedBytecode(_state().templates, BYTECODE_DIR, salt)
    return env
