"""Render matrix.yml into the comparison table: matrix.md, matrix.vi.md and matrix.zh.md."""

from pathlib import Path

import yaml

HERE = Path(__file__).parent
OUTPUT = {"en": "matrix.md", "vi": "matrix.vi.md", "zh": "matrix.zh.md"}
FIRST_COLUMN = {"en": "Server", "vi": "Server", "zh": "服务器"}
HEADER = "<!-- Generated from matrix.yml by render_matrix.py: edit those, not this file. -->\n"


def cell(matrix: dict, lang: str, data: dict) -> str:
    text = matrix["labels"][data["value"]][lang]
    if "note" in data:
        text += f"<br>{data['note'][lang]}"
    return text


def render(matrix: dict, lang: str) -> str:
    columns = matrix["columns"]
    lines = [
        "| " + " | ".join([FIRST_COLUMN[lang], *(c[lang] for c in columns.values())]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    footnotes = []
    for key, row in matrix["rows"].items():
        name = row["name"][lang]
        if "untested" in row:
            marker = f"[^{key}]"
            name += marker
            cells = [matrix["labels"]["untested"][lang]] + ["⚪"] * (len(columns) - 1)
            footnotes.append(f"{marker}: {row['untested']['why'][lang]}")
        else:
            cells = [cell(matrix, lang, row["cells"][column]) for column in columns]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return HEADER + "\n".join(lines) + "\n\n" + "\n".join(footnotes) + "\n"


def main(folder: Path = HERE) -> None:
    matrix = yaml.safe_load((folder / "matrix.yml").read_text("utf-8"))
    for lang, name in OUTPUT.items():
        (folder / name).write_text(render(matrix, lang), "utf-8")


if __name__ == "__main__":
    main()
