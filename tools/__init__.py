"""The handbook's tooling: what measures, renders, stamps and checks, behind one entry point.

Run ``python -m tools`` for the list of verbs. Each verb is a module of this package with a
``main(argv: list[str]) -> int`` function; the first line of its docstring is its help line.
Snippets never import from here: a snippet is what a reader copies and runs.
"""
