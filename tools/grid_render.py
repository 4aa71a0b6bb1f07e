"""Render the version grid (snippets/versions/grid.json) as Markdown, in en, vi and zh.

Two kinds of file, all generated and committed under ``snippets/versions/``:

* ``grid.md`` (``.vi.md``, ``.zh.md``): the Versions page's tables, every set and every claim;
* ``notes/<topic>.md`` (``.vi.md``, ``.zh.md``): the short note each page includes, naming each
  claim of that page that does not hold on some set, and the release where it changed.

``stale(data)`` lists the files that differ from what ``data`` renders to (the test that keeps
the pages and the data in step).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "snippets" / "versions"
LANGS = ("en", "vi", "zh")

TITLE = {
    "pinned": {"en": "Pinned", "vi": "Bản ghim", "zh": "固定版本"},  # noqa: E501
    "newest": {"en": "Newest", "vi": "Mới nhất", "zh": "最新版本"},  # noqa: E501
    "gunicorn-25": {"en": "Gunicorn 25", "vi": "Gunicorn 25", "zh": "Gunicorn 25"},
    "gunicorn-23": {"en": "Gunicorn 23", "vi": "Gunicorn 23", "zh": "Gunicorn 23"},
}

WHY = {
    "pinned": {
        "en": "What every page and requirements file pins: every claim is proved on it.",
        "vi": "Đúng các phiên bản mà mọi trang và mọi file requirements ghim: mọi khẳng định "
              "đều được chứng minh trên bộ này.",
        "zh": "每个页面和 requirements 文件固定的版本：每条结论都在这组版本上得到验证。",  # noqa: E501
    },
    "newest": {
        "en": "The newest FastAPI, Gunicorn, Uvicorn and uvicorn-worker on PyPI, resolved when "
              "the grid runs: what a reader who installs without pins gets.",
        "vi": "FastAPI, Gunicorn, Uvicorn và uvicorn-worker mới nhất trên PyPI, lấy ngay lúc "
              "chạy bảng: thứ người đọc nhận được khi cài mà không ghim phiên bản.",
        "zh": "运行时从 PyPI 取得的最新 FastAPI、Gunicorn、Uvicorn 和 uvicorn-worker：读者不固定版本安装时得到的就是它们。",  # noqa: E501
    },
    "gunicorn-25": {
        "en": "The last Gunicorn 25 release (March 2026) with the Uvicorn, uvicorn-worker and "
              "FastAPI of that month: a service pinned in early 2026.",
        "vi": "Bản Gunicorn 25 cuối cùng (tháng 3/2026) cùng Uvicorn, uvicorn-worker và FastAPI "
              "của tháng đó: một dịch vụ ghim phiên bản từ đầu năm 2026.",
        "zh": "Gunicorn 25 的最后一个版本（2026 年 3 月）及同月的 Uvicorn、uvicorn-worker 和 FastAPI：2026 年初固定版本的服务。",  # noqa: E501
    },
    "gunicorn-23": {
        "en": "Gunicorn 23.0.0 (August 2024) with the Uvicorn 0.30, uvicorn-worker 0.2 and "
              "FastAPI of that month: the long-lived pins many services still run.",
        "vi": "Gunicorn 23.0.0 (tháng 8/2024) cùng Uvicorn 0.30, uvicorn-worker 0.2 và FastAPI "
              "của tháng đó: bộ ghim lâu đời mà nhiều dịch vụ vẫn đang chạy.",
        "zh": "Gunicorn 23.0.0（2024 年 8 月）及同月的 Uvicorn 0.30、uvicorn-worker 0.2 和 FastAPI：许多服务至今仍在使用的老版本组合。",  # noqa: E501
    },
}

OUTCOME = {
    "passed": {"en": "passes", "vi": "đạt", "zh": "通过"},  # noqa: E501
    "failed": {"en": "fails", "vi": "không đạt", "zh": "失败"},  # noqa: E501
    "not applicable": {"en": "not applicable", "vi": "không áp dụng", "zh": "不适用"},  # noqa: E501
    "skipped": {"en": "skipped", "vi": "bị bỏ qua", "zh": "跳过"},  # noqa: E501
    "not run": {"en": "not run", "vi": "chưa chạy", "zh": "未运行"},  # noqa: E501
}

WORDS = {
    "set": {"en": "Set", "vi": "Bộ phiên bản", "zh": "版本组合"},  # noqa: E501
    "why": {"en": "Why", "vi": "Vì sao chọn", "zh": "选择理由"},  # noqa: E501
    "run": {"en": "Run on", "vi": "Ngày chạy", "zh": "运行日期"},  # noqa: E501
    "page": {"en": "Page", "vi": "Trang", "zh": "页面"},  # noqa: E501
    "section": {"en": "Section", "vi": "Mục", "zh": "章节"},  # noqa: E501
    "test": {"en": "Test", "vi": "Test", "zh": "测试"},  # noqa: E501
    "reasons": {"en": "Why a claim does not hold", "vi": "Vì sao khẳng định không đúng",
                "zh": "结论不成立的原因"},  # noqa: E501
    "no_reasons": {"en": "Every claim holds on every set.",
                   "vi": "Mọi khẳng định đều đúng trên mọi bộ phiên bản.",
                   "zh": "每条结论在每个版本组合上都成立。"},  # noqa: E501
    "bisect": {"en": "Where a claim changed", "vi": "Khẳng định thay đổi ở bản nào",
               "zh": "结论在哪个版本发生变化"},  # noqa: E501
    "no_bisect": {"en": "No release search has been run yet.",
                  "vi": "Chưa dò tìm bản phát hành thay đổi cho khẳng định nào.",
                  "zh": "尚未逐版本查找任何结论的变化点。"},  # noqa: E501
    "note_all": {
        "en": "Every claim on this page holds on every version set of the [version grid]"
              "(versions.md), not only on the pinned releases.",
        "vi": "Mọi khẳng định trên trang này đều đúng với mọi bộ phiên bản trong [bảng phiên bản]"
              "(versions.md), không chỉ với các bản đã ghim.",
        "zh": "本页的每条结论在[版本矩阵](versions.md)的每个版本组合上都成立，而不只是固定版本。",  # noqa: E501
    },
    "note_some": {
        "en": "The [version grid](versions.md) runs this page's claim tests on several version "
              "sets; on some of them, these claims do not hold:",
        "vi": "[Bảng phiên bản](versions.md) chạy các test khẳng định của trang này trên nhiều bộ "
              "phiên bản; với một số bộ, các khẳng định sau không đúng:",
        "zh": "[版本矩阵](versions.md)在多个版本组合上运行本页的结论测试；在其中一些组合上，以下结论不成立：",  # noqa: E501
    },
    "with": {"en": "With {set} ({versions})", "vi": "Với {set} ({versions})",
             "zh": "使用 {set}（{versions}）时"},  # noqa: E501
    "changed": {"en": "changed between {dist} {last} ({before}) and {version}",
                "vi": "thay đổi giữa {dist} {last} ({before}) và {version}",
                "zh": "在 {dist} {last}（{before}）与 {version} 之间发生变化"},  # noqa: E501
    "sep": {"en": "; ", "vi": "; ", "zh": "；"},
    "comma": {"en": ", ", "vi": ", ", "zh": "，"},
    "colon": {"en": ": ", "vi": ": ", "zh": "："},
}

ABBR = {"passed": "✓", "failed": "✗", "not applicable": "n/a", "skipped": "skip",
        "not run": "—"}


def _w(key: str, lang: str) -> str:
    return WORDS[key][lang]


def _suffix(lang: str) -> str:
    return "" if lang == "en" else f".{lang}"


def _code(text: str) -> str:
    text = (text or "").replace("`", "'").replace("|", "/").strip()
    return f"`{text}`" if text else ""


def _differs(data: dict, name: str) -> dict[str, str]:
    """The releases of set ``name`` that differ from the pinned set's."""
    sets = {s["name"]: s for s in data["sets"]}
    pinned = sets.get("pinned", {}).get("resolved", {})
    return {d: v for d, v in sets[name]["resolved"].items() if pinned.get(d) != v}


def _versions(data: dict, name: str) -> str:
    found = _differs(data, name) or {s["name"]: s for s in data["sets"]}[name]["resolved"]
    return ", ".join(f"{d} {v}" for d, v in found.items())


def _changes(data: dict, test: str) -> list[dict]:
    return [c for b in data.get("bisections", []) for c in b["changes"] if c["test"] == test]


def grid_page(data: dict, lang: str) -> str:
    names = [s["name"] for s in data["sets"]]
    out = [f"| {_w('set', lang)} | {_w('why', lang)} | "
           + " | ".join(["fastapi", "starlette", "gunicorn", "uvicorn", "uvicorn-worker",
                         "fastapi-cli"]) + f" | {_w('run', lang)} |",
           "|---|---|" + "---|" * 7]
    for s in data["sets"]:
        r = s["resolved"]
        out.append(f"| {TITLE[s['name']][lang]} | {WHY[s['name']][lang]} | "
                   + " | ".join(r.get(d, "") for d in ("fastapi", "starlette", "gunicorn",
                                                      "uvicorn", "uvicorn-worker", "fastapi-cli"))
                   + f" | {s.get('run', '')} |")
    out.append("")
    legend = " · ".join(f"{ABBR[k]} {OUTCOME[k][lang]}" for k in ABBR)
    out += [legend, ""]
    by_page: dict[str, list[dict]] = {}
    for c in data["claims"]:
        by_page.setdefault(c["page"], []).append(c)
    for page, claims in by_page.items():
        topic = page.removeprefix("docs/").removesuffix(".md")
        out += [f"**[`{topic}`]({topic}.md)**", "",
                f"| {_w('section', lang)} | {_w('test', lang)} | "
                + " | ".join(TITLE[n][lang] for n in names) + " |",
                "|---|---|" + "---|" * len(names)]
        for c in claims:
            cells = [ABBR[c["results"].get(n, {"outcome": "not run"})["outcome"]] for n in names]
            section = f"[`#{c['section']}`]({topic}.md#{c['section']})" if c["section"] else ""
            out.append(f"| {section} | `{c['test'].split('::')[1]}` | " + " | ".join(cells) + " |")
        out.append("")
    out += [f"**{_w('reasons', lang)}**", ""]
    reasons = []
    for c in data["claims"]:
        for n in names:
            r = c["results"].get(n, {"outcome": "not run"})
            if r["outcome"] != "passed":
                reasons.append(f"- `{c['test'].split('::')[1]}`{_w('comma', lang)}"
                               f"{TITLE[n][lang]}{_w('colon', lang)}"
                               f"{OUTCOME[r['outcome']][lang]}"
                               + (f"{_w('colon', lang)}{_code(r.get('reason'))}"
                                  if r.get("reason") else ""))
    out += reasons or [_w("no_reasons", lang)]
    out += ["", f"**{_w('bisect', lang)}**", ""]
    bis = []
    for b in data.get("bisections", []):
        for ch in b["changes"]:
            bis.append(f"- `{ch['test'].split('::')[1]}`: " + _w("changed", lang).format(
                dist=ch["dist"], version=ch["changed_in"], last=ch["last_before"],
                before=OUTCOME[ch["before"]][lang]) + f" → {OUTCOME[ch['after']][lang]}")
    out += bis or [_w("no_bisect", lang)]
    return "\n".join(out) + "\n"


def note(data: dict, topic: str, lang: str) -> str:
    page = f"docs/{topic}.md"
    names = [s["name"] for s in data["sets"]]
    items = []
    for c in data["claims"]:
        if c["page"] != page:
            continue
        parts = []
        for n in names:
            r = c["results"].get(n, {"outcome": "not run"})
            if r["outcome"] in ("passed", "not run"):  # "not run" is unknown, not a difference
                continue
            text = (_w("with", lang).format(set=TITLE[n][lang], versions=_versions(data, n))
                    + _w("colon", lang) + OUTCOME[r["outcome"]][lang])
            if r.get("reason"):
                text += f" {_code(r['reason'])}"
            parts.append(text)
        if not parts:
            continue
        for ch in _changes(data, c["test"]):
            parts.append(_w("changed", lang).format(
                dist=ch["dist"], version=ch["changed_in"], last=ch["last_before"],
                before=OUTCOME[ch["before"]][lang]))
        section = f" ([`#{c['section']}`](#{c['section']}))" if c["section"] else ""
        items.append(f"- `{c['test'].split('::')[1]}`{section}{_w('colon', lang)}"
                     + _w("sep", lang).join(parts))
    if not items:
        return _w("note_all", lang) + "\n"
    return _w("note_some", lang) + "\n\n" + "\n".join(items) + "\n"


def rendered(data: dict) -> dict[Path, str]:
    files = {}
    topics = sorted({c["page"].removeprefix("docs/").removesuffix(".md") for c in data["claims"]})
    for lang in LANGS:
        files[OUT / f"grid{_suffix(lang)}.md"] = grid_page(data, lang)
        for topic in topics:
            files[OUT / "notes" / f"{topic}{_suffix(lang)}.md"] = note(data, topic, lang)
    return files


def write(data: dict) -> None:
    for path, text in rendered(data).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        print(f"grid: wrote {path.relative_to(ROOT)}")


def stale(data: dict) -> list[str]:
    out = []
    for path, text in rendered(data).items():
        if not path.is_file() or path.read_text("utf-8") != text:
            out.append(str(path.relative_to(ROOT)))
    return out
