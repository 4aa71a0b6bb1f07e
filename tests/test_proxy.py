"""docs/proxy.md: what the app sees behind a proxy, and who may tell it.

The test plays both roles on loopback. A request from 127.0.0.1 is "the proxy" (both servers
trust 127.0.0.1 and ::1 by default); a request from 127.0.0.2, another loopback address that
is not on the default list, is "a client that reaches the server directly". The harness
removes FORWARDED_ALLOW_IPS from the environment, so only what a command sets counts.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import harness

PROXY = "127.0.0.1"  # trusted by default
DIRECT = "127.0.0.2"  # not trusted unless the server trusts everything
CLIENT = "203.0.113.7"  # the client's address, as a proxy reports it
FORGED = "198.51.100.66"  # an address a client claims for itself
PROXY_HEADERS = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}
# A proxy that appends: the client sent X-Forwarded-For: FORGED, the proxy added the real address.
APPENDED = {"X-Forwarded-For": f"{FORGED}, {CLIENT}", "X-Forwarded-Proto": "https"}
RFC7239 = {"Forwarded": f"for={CLIENT};proto=https"}

#: server -> (its commands, by section; does it take the client address from X-Forwarded-For?)
SERVERS = {
    "uvicorn": ("proxy/uvicorn.sh", True),
    "gunicorn + uvicorn-worker": ("proxy/gunicorn_uvicorn_worker.sh", True),
    "gunicorn asgi worker": ("proxy/gunicorn_asgi.sh", False),
}


def ask(server: harness.Server, source: str, headers: dict[str, str] | None = None) -> dict:
    """GET / from the local address ``source``; return what the app saw."""
    transport = httpx.HTTPTransport(local_address=source)
    with server.client(transport=transport) as client:
        response = client.get("/", headers=headers or {})
    response.raise_for_status()
    return response.json()


def sees(answer: dict) -> tuple[str, str]:
    return answer["client"], answer["scheme"]


@contextlib.contextmanager
def serve(ref: str, tmp_path: Path) -> Iterator[harness.Server]:
    """Serve main.py with a proxy/ command; check it stops cleanly on SIGTERM.

    Gunicorn exits 0; a single Uvicorn process finishes its graceful shutdown and then
    re-raises SIGTERM, so its status is -SIGTERM.
    """
    app = harness.snippet("proxy/main.py")
    with harness.serving(ref, log_dir=tmp_path, cwd=app.folder, expect_clean=False) as server:
        yield server
        rc = server.stop(expect_clean=False)
        expected = -signal.SIGTERM if ref.startswith("proxy/uvicorn.sh") else 0
        assert rc == expected, f"exit status {rc}\n{server.log()}"


@pytest.mark.parametrize("server_kind", SERVERS.values(), ids=SERVERS.keys())
def test_default_trusts_only_the_loopback_proxy(server_kind: tuple[str, bool], tmp_path: Path) -> None:
    command, reads_xff = server_kind
    with serve(f"{command}:default", tmp_path) as server:
        # Straight from a client, no headers: the peer's address and plain http.
        assert sees(ask(server, PROXY)) == (PROXY, "http")
        # From the trusted proxy: the scheme always, the client address only where X-F-F is read.
        answer = ask(server, PROXY, PROXY_HEADERS)
        assert sees(answer) == (CLIENT if reads_xff else PROXY, "https")
        assert answer["url"].startswith("https://"), "links the app builds use https too"
        # The same headers from an address not on the list change nothing.
        answer = ask(server, DIRECT, PROXY_HEADERS)
        assert sees(answer) == (DIRECT, "http")
        assert answer["url"].startswith("http://"), "and links point to http://"
        # The standard Forwarded header (RFC 7239) is not read at all.
        assert sees(ask(server, PROXY, RFC7239)) == (PROXY, "http")
        if reads_xff:
            # A proxy that appends: the right-most address that is not a trusted proxy wins.
            assert sees(ask(server, PROXY, APPENDED)) == (CLIENT, "https")


@pytest.mark.parametrize("server_kind", SERVERS.values(), ids=SERVERS.keys())
def test_trusting_your_proxy_ignores_everyone_else(server_kind: tuple[str, bool], tmp_path: Path) -> None:
    """--forwarded-allow-ips=10.0.0.1 replaces the default: even 127.0.0.1 is not trusted now."""
    command, _ = server_kind
    with serve(f"{command}:trust-proxy", tmp_path) as server:
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (PROXY, "http")
        assert sees(ask(server, DIRECT, PROXY_HEADERS)) == (DIRECT, "http")


@pytest.mark.parametrize("command", ["proxy/uvicorn.sh:env", "proxy/gunicorn_uvicorn_worker.sh:env"])
def test_forwarded_allow_ips_env_var_sets_the_list(command: str, tmp_path: Path) -> None:
    with serve(command, tmp_path) as server:
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (PROXY, "http")


def test_uvicorn_no_proxy_headers_ignores_even_a_trusted_proxy(tmp_path: Path) -> None:
    with serve("proxy/uvicorn.sh:no-proxy-headers", tmp_path) as server:
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (PROXY, "http")


@pytest.mark.parametrize("server_kind", SERVERS.values(), ids=SERVERS.keys())
def test_trusting_everyone_lets_any_client_spoof(server_kind: tuple[str, bool], tmp_path: Path) -> None:
    """With '*', a client that reaches the server directly picks its own address and scheme."""
    command, reads_xff = server_kind
    with serve(f"{command}:trust-all", tmp_path) as server:
        assert sees(ask(server, DIRECT, PROXY_HEADERS)) == (CLIENT if reads_xff else DIRECT, "https")
        if reads_xff:
            # Even through a proxy that appends, '*' takes the left-most address: the forged one.
            assert sees(ask(server, PROXY, APPENDED)) == (FORGED, "https")


def test_middleware_gives_the_asgi_worker_the_client_address(tmp_path: Path) -> None:
    """The command serves behind_proxy:app, main.py's app wrapped in Uvicorn's middleware."""
    wrapper = harness.snippet("proxy/behind_proxy.py")
    with serve("proxy/gunicorn_asgi.sh:middleware", tmp_path) as server:
        assert f"{wrapper.path.stem}:app" in server.command
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (CLIENT, "https")
        assert sees(ask(server, PROXY, APPENDED)) == (CLIENT, "https")
        assert sees(ask(server, DIRECT, PROXY_HEADERS)) == (DIRECT, "http")
