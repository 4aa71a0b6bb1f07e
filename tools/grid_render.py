"""Render the version grid (snippets/versions/grid.json) as Markdown, in en, vi and zh."""

from __future__ import annotations


def write(data: dict) -> None:
    pass


def stale(data: dict) -> list[str]:
    return []
