"""Write settings_reference.md: every setting of the installed Gunicorn, from its own source.

Run it again after upgrading Gunicorn:

    python snippets/configuration/settings_reference.py
"""

import enum
import inspect
import os
import re
import sys
from pathlib import Path

OUTPUT = Path(__file__).with_name("settings_reference.md")
# Gunicorn computes these defaults from the environment when it is imported;
# the table shows the defaults of a clean environment.
ENV_DEFAULTS = ("PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS")


def plain(rst: str) -> str:
    """One line of Markdown from a bit of Gunicorn's reStructuredText."""
    text = re.sub(r":ref:`([^`<]+?)\s*<[^`>]+>`", r"\1", rst)  # :ref:`label <target>`
    text = re.sub(r":ref:`([^`]+)`", r"`\1`", text)  # :ref:`target`
    text = re.sub(r"``([^`]+)``", r"`\1`", text)  # ``code``
    text = re.sub(r"`([^`]+) <https?://[^>]+>`_", r"\1", text)  # `label <url>`_
    text = " ".join(text.split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def summary(desc: str) -> str:
    """The first sentence of a setting's description."""
    first_paragraph = inspect.cleandoc(desc).split("\n\n")[0]
    sentence = re.split(r"(?<=[a-z0-9)`])\.(\s|$)", first_paragraph, maxsplit=1)[0]
    return plain(sentence).rstrip(".") + "."


def default_of(setting) -> str:
    doc = getattr(setting, "default_doc", None)
    if doc:
        doc = inspect.cleandoc(doc)
        return plain(doc) if "\n" not in doc else "platform-specific"
    value = setting.default
    if callable(value):
        body = inspect.getsource(value).strip().splitlines()[-1].strip()
        return "a hook that does nothing" if body == "pass" else "a built-in function"
    if isinstance(value, enum.Enum):  # ssl_version: show the name and the number
        return f"`{value.name}` (`{value.value}`)"
    return f"`{value!r}`"


def render() -> str:
    import gunicorn
    from gunicorn.config import KNOWN_SETTINGS

    rows = [
        "| setting | command line | default | what it does |",
        "|---|---|---|---|",
    ]
    for cls in KNOWN_SETTINGS:
        setting = cls()
        flags = ", ".join(f"`{flag}`" for flag in setting.cli or []) or "config file only"
        rows.append(
            f"| `{setting.name}` | {flags} | {default_of(setting)} | {summary(setting.desc)} |"
        )
    head = (
        f"Generated from Gunicorn {gunicorn.__version__} ({len(KNOWN_SETTINGS)} settings) by "
        "`snippets/configuration/settings_reference.py`; the last column is the first sentence "
        "of Gunicorn's own description."
    )
    return head + "\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    for name in ENV_DEFAULTS:
        os.environ.pop(name, None)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    target.write_text(render(), "utf-8")
    print(f"wrote {target}")
