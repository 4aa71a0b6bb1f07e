# From the repository root, in the environment the README's commands create: run the pages'
# claim tests once per version set (pinned, newest, gunicorn-25, gunicorn-23), one set after
# another, and rewrite snippets/versions/grid.json, the grid tables and every page's note
.venv/bin/python -m tools grid
