# From the repository root: do the grid tables and the page notes match grid.json?
.venv/bin/python -m tools grid --check
