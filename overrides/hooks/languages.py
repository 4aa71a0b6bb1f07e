"""MkDocs hook: build only some languages, for a fast editing loop.

``HANDBOOK_LANGUAGES=vi mkdocs serve`` builds and serves only the Vietnamese pages (at
``/vi/``); ``HANDBOOK_LANGUAGES=en,zh`` builds two. Unset, every language is built, as the
tests and the published site need. It only switches the i18n plugin's ``build`` flags (and, when
the default language is left out, starts with the first language asked for), before the
plugin reads them.
"""

from __future__ import annotations

import os

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

VAR = "HANDBOOK_LANGUAGES"


@event_priority(100)  # before the i18n plugin's on_config (priority -100) reads the languages
def on_config(config):
    wanted = os.environ.get(VAR, "").replace(",", " ").split()
    if not wanted:
        return config
    i18n = config.plugins["i18n"]
    known = [lang.locale for lang in i18n.config.languages]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise PluginError(f"{VAR}={os.environ[VAR]!r}: no language {unknown}; known: {known}")
    for lang in i18n.config.languages:
        lang.build = lang.locale in wanted
    if i18n.current_language is None and i18n.default_language not in wanted:
        i18n.current_language = next(locale for locale in known if locale in wanted)
    return config
