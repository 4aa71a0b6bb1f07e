uv lock
