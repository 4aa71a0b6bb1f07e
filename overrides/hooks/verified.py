"""MkDocs hook: put the versions the snippets were verified with on every page.

The versions are read from the installed distributions at build time, the same
environment the test suite runs in (both come from uv.lock), so they are never typed.
"""

import platform
from importlib.metadata import version

#: Distributions whose behaviour the handbook's claims depend on, in display order.
VERIFIED_PACKAGES = ("fastapi", "gunicorn", "uvicorn", "uvicorn-worker")


def verified_versions() -> list[tuple[str, str]]:
    pairs = [(name, version(name)) for name in VERIFIED_PACKAGES]
    pairs.append(("Python", platform.python_version()))
    return pairs


def on_env(env, config, files):
    env.globals["verified_versions"] = verified_versions()
    return env
