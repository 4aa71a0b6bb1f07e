"""Rewrite the Gunicorn settings tables: ``python -m tools settings-reference [OUT.md]``.

Every setting of the installed Gunicorn, from its own source, into
``snippets/configuration/settings_reference.md`` and the ``.vi.md`` and ``.zh.md`` tables beside
it (or beside ``OUT.md``). Run it again after upgrading Gunicorn.
"""

from __future__ import annotations

import enum
import inspect
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "snippets" / "configuration" / "settings_reference.md"
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


#: The table's own words in each language; the descriptions stay Gunicorn's English.
TEXT = {
    "en": {
        "columns": "| setting | command line | default | what it does |",
        "head": "Generated from Gunicorn {version} ({count} settings) by `{script}`; the last "
                "column is the first sentence of Gunicorn's own description.",
        "config file only": "config file only", "platform-specific": "platform-specific",
        "a hook that does nothing": "a hook that does nothing",
        "a built-in function": "a built-in function",
    },
    "vi": {
        "columns": "| thiết lập | dòng lệnh | mặc định | tác dụng (mô tả của Gunicorn) |",
        "head": "Sinh từ Gunicorn {version} ({count} thiết lập) bởi `{script}`; cột cuối là câu "
                "đầu tiên trong phần mô tả của chính Gunicorn, giữ nguyên tiếng Anh.",
        "config file only": "chỉ trong file cấu hình", "platform-specific": "tùy nền tảng",
        "a hook that does nothing": "một hook không làm gì",
        "a built-in function": "một hàm có sẵn",
    },
    "zh": {
        "columns": "| 设置 | 命令行 | 默认值 | 作用（Gunicorn 的原文描述） |",
        "head": "由 `{script}` 根据 Gunicorn {version}（{count} 项设置）生成；最后一列是 "
                "Gunicorn 自己描述中的第一句话，保留英文原文。",
        "config file only": "仅限配置文件", "platform-specific": "因平台而异",
        "a hook that does nothing": "什么也不做的钩子",
        "a built-in function": "内置函数",
    },
}


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


def render(lang: str = "en") -> str:
    import gunicorn
    from gunicorn.config import KNOWN_SETTINGS

    words = TEXT[lang]
    rows = [words["columns"], "|---|---|---|---|"]
    for cls in KNOWN_SETTINGS:
        setting = cls()
        flags = ", ".join(f"`{flag}`" for flag in setting.cli or []) or words["config file only"]
        default = words.get(default_of(setting), default_of(setting))
        what = summary(setting.desc)
        if lang != "en":  # quoted: Gunicorn's own English words
            what = f"“{what}”"
        rows.append(f"| `{setting.name}` | {flags} | {default} | {what} |")
    head = words["head"].format(version=gunicorn.__version__, count=len(KNOWN_SETTINGS),
                                script="tools/settings_reference.py")
    return head + "\n\n" + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    for name in ENV_DEFAULTS:
        os.environ.pop(name, None)
    target = Path(argv[0]) if argv else OUTPUT
    for lang in TEXT:  # settings_reference.md, then .vi.md and .zh.md beside it
        path = target if lang == "en" else target.with_suffix(f".{lang}{target.suffix}")
        path.write_text(render(lang), "utf-8")
        print(f"wrote {path}")
    return 0
