"""Render matrix.yml into the comparison table: matrix.md, matrix.vi.md and matrix.zh.md."""

from pathlib import Path

import yaml

HERE = Path(__file__).parent
OUTPUT = {"en": "matrix.md", "vi": "matrix.vi.md", "zh": "matrix.zh.md"}
HEADER = "<!-- Generated from matrix.yml by render_matrix.py: edit those, not this file. -->\n"


def cell(matrix: dict, lang: str, row: dict, column: str) -> str:
    data = row["cells"][column]
    text = matrix["labels"][data["value"]][lang]
    if "note" in data:
        text += f"<br>{data['note'][lang]}"
    return text


def render(matrix: dict, lang: str) -> str:
    """One column per server, one line per feature."""
    rows = matrix["rows"]
    names = [row["name"][lang] for row in rows.values()]
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(rows) + 1) + "|"]
    for column, title in matrix["columns"].items():
        cells = [cell(matrix, lang, row, column) for row in rows.values()]
        lines.append(f"| **{title[lang]}** | " + " | ".join(cells) + " |")
    return HEADER + "\n".join(lines) + "\n"


def main(folder: Path = HERE) -> None:
    matrix = yaml.safe_load((folder / "matrix.yml").read_text("utf-8"))
    for lang, name in OUTPUT.items():
        (folder / name).write_text(render(matrix, lang), "utf-8")


if __name__ == "__main__":
    main()
