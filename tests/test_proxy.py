"""docs/proxy.md: what the app sees behind a proxy, and who may tell it.

The test plays both roles on loopback. A request from 127.0.0.1 is "the proxy" (both servers
trust 127.0.0.1 and ::1 by default); a request from 127.0.0.2, another loopback address that
is not on the default list, is "a client that reaches the server directly". The harness
removes FORWARDED_ALLOW_IPS from the environment, so only what a command sets counts.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
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
def test_default_trusts_only_the_loopback_proxy(
    server_kind: tuple[str, bool], tmp_path: Path
) -> None:
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
def test_trusting_your_proxy_ignores_everyone_else(
    server_kind: tuple[str, bool], tmp_path: Path
) -> None:
    """--forwarded-allow-ips=10.0.0.1 replaces the default: even 127.0.0.1 is not trusted now."""
    command, _ = server_kind
    with serve(f"{command}:trust-proxy", tmp_path) as server:
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (PROXY, "http")
        assert sees(ask(server, DIRECT, PROXY_HEADERS)) == (DIRECT, "http")


@pytest.mark.parametrize(
    "command", ["proxy/uvicorn.sh:env", "proxy/gunicorn_uvicorn_worker.sh:env"]
)
def test_forwarded_allow_ips_env_var_sets_the_list(command: str, tmp_path: Path) -> None:
    with serve(command, tmp_path) as server:
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (PROXY, "http")


def test_uvicorn_no_proxy_headers_ignores_even_a_trusted_proxy(tmp_path: Path) -> None:
    with serve("proxy/uvicorn.sh:no-proxy-headers", tmp_path) as server:
        assert sees(ask(server, PROXY, PROXY_HEADERS)) == (PROXY, "http")


@pytest.mark.parametrize("server_kind", SERVERS.values(), ids=SERVERS.keys())
def test_trusting_everyone_lets_any_client_spoof(
    server_kind: tuple[str, bool], tmp_path: Path
) -> None:
    """With '*', a client that reaches the server directly picks its own address and scheme."""
    command, reads_xff = server_kind
    with serve(f"{command}:trust-all", tmp_path) as server:
        assert sees(ask(server, DIRECT, PROXY_HEADERS)) == (
            CLIENT if reads_xff else DIRECT,
            "https",
        )
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


# --------------------------------------------------------------------------- a real nginx in front
#
# nginx runs as a user-level process (harness.nginx) with the page's fastapi.conf, rewritten only
# in its listen ports and upstream address. The client connects from 127.0.0.2, so the address
# nginx reports (127.0.0.2) differs from the address the app server sees nginx at (127.0.0.1).

#: server -> (the command the page shows behind nginx; does it read X-Forwarded-For?)
BEHIND_NGINX = {
    "gunicorn + uvicorn-worker": ("proxy/gunicorn_uvicorn_worker.sh", True),
    "gunicorn asgi worker": ("proxy/gunicorn_asgi.sh", False),
    "uvicorn --workers": ("proxy/uvicorn.sh", True),
}
#: `fastapi run` behind nginx: the same checks, except the reload (tests/test_servers.py shows
#: that its reload depends on each new worker starting within 5 s).
FASTAPI_RUN = {"fastapi run": ("proxy/fastapi_run.sh", True)}
READER = "127.0.0.2"  # the reader's client, as nginx sees it
NGINX_ADDR = "127.0.0.1"  # nginx, as the app server sees it
NGINX_CONFIGS = {
    "fastapi.conf": ["proxy/fastapi.conf"],
    "upstream_unix.conf": ["proxy/upstream_unix.conf", "proxy/fastapi.conf:server"],
    "prefix.conf": ["proxy/prefix.conf"],
}


@contextlib.contextmanager
def app_behind_nginx(ref: str, tmp_path: Path, conf: list[str] | None = None,
                     ) -> Iterator[tuple[harness.Server, harness.Nginx]]:
    """The app served by a page command, with nginx in front using a page config."""
    app = harness.snippet("proxy/main.py")
    ready = None if "unix-socket" in ref else "/"
    # `fastapi run` cannot raise Uvicorn's 5 s worker health check; see NICE in test_servers.py.
    nice = -20 if ref.startswith("proxy/fastapi_run.sh") else None
    with harness.serving(ref, log_dir=tmp_path, cwd=app.folder, ready_path=ready,
                         expect_clean=False, nice=nice, ready_timeout=90) as server:
        with harness.nginx(conf or ["proxy/fastapi.conf"], log_dir=tmp_path,
                           upstream=server.ports) as nginx:
            yield server, nginx


def via_nginx(nginx: harness.Nginx, path: str = "/", **kwargs) -> httpx.Response:
    """GET ``path`` over HTTPS through nginx, from the reader's address."""
    transport = httpx.HTTPTransport(local_address=READER, verify=nginx.tls_context())
    with nginx.client(transport=transport) as client:
        return client.get(path, **kwargs)


@pytest.mark.parametrize("conf", NGINX_CONFIGS.values(), ids=NGINX_CONFIGS.keys())
def test_nginx_accepts_every_config(conf: list[str], tmp_path: Path) -> None:
    """`nginx -t` passes for each config the page shows (certificate.sh made the certificate)."""
    harness.ensure_debian_packages(harness.NGINX, ["nginx"])
    site = harness.nginx_config(conf, harness.port_map(), tmp_path / "nginx")
    harness.run("proxy/certificate.sh", cwd=site.prefix, log_dir=tmp_path)
    assert "test is successful" in site.check().output
    # The page's own check command is `nginx -t` (then a reload).
    assert harness.command_of(harness.snippet("proxy/nginx_check.sh")).startswith("nginx -t ")


@pytest.mark.parametrize("server_kind", [*BEHIND_NGINX.values(), *FASTAPI_RUN.values()],
                         ids=[*BEHIND_NGINX, *FASTAPI_RUN])
def test_through_nginx_the_app_sees_the_client_and_https(server_kind: tuple[str, bool],
                                                         tmp_path: Path) -> None:
    """Behind nginx on the same host, the servers' defaults trust it: the app sees the reader's
    address (where X-Forwarded-For is read) and https, and builds https:// links. A forged
    X-Forwarded-For does not fool it: nginx appends the address it saw, and the server takes
    the right-most address it does not trust. Plain HTTP is redirected to HTTPS."""
    command, reads_xff = server_kind
    with app_behind_nginx(f"{command}:behind-nginx", tmp_path) as (server, nginx):
        answer = via_nginx(nginx).json()
        assert sees(answer) == (READER if reads_xff else NGINX_ADDR, "https"), answer
        assert answer["x_forwarded_for"] == READER
        assert answer["url"].startswith("https://"), answer
        forged = via_nginx(nginx, headers={"X-Forwarded-For": FORGED}).json()
        assert forged["x_forwarded_for"] == f"{FORGED}, {READER}"
        assert sees(forged) == (READER if reads_xff else NGINX_ADDR, "https"), forged
        redirect = harness.http_get(nginx.url("/", tls=False), timeout=5)
        assert redirect.status_code == 301 and redirect.headers["location"].startswith("https://")


@pytest.mark.parametrize("server_kind", SERVERS.values(), ids=SERVERS.keys())
def test_through_nginx_an_untrusted_nginx_is_ignored(server_kind: tuple[str, bool],
                                                     tmp_path: Path) -> None:
    """When the server trusts another address (10.0.0.1), nginx's headers are ignored: the app
    sees nginx's address and http, and builds http:// links."""
    command, _ = server_kind
    with app_behind_nginx(f"{command}:trust-proxy", tmp_path) as (server, nginx):
        answer = via_nginx(nginx).json()
        assert sees(answer) == (NGINX_ADDR, "http"), answer
        assert answer["url"].startswith("http://"), answer


@pytest.mark.parametrize("server_kind", [*BEHIND_NGINX.values(), *FASTAPI_RUN.values()],
                         ids=[*BEHIND_NGINX, *FASTAPI_RUN])
def test_websocket_through_nginx(server_kind: tuple[str, bool], tmp_path: Path) -> None:
    """With the Upgrade and Connection headers passed on, a WebSocket works through nginx."""
    from websockets.sync.client import connect

    command, _ = server_kind
    with app_behind_nginx(f"{command}:behind-nginx", tmp_path) as (server, nginx):
        context = nginx.tls_context()
        url = nginx.url("/ws").replace("https://", "wss://")
        with connect(url, ssl=context, open_timeout=30) as ws:
            ws.send("hello")
            assert ws.recv(timeout=30) == "echo: hello"


def half_sent(nginx: harness.Nginx):
    """Send half of a request's headers to nginx over TLS; return a function that sends the rest
    and returns the HTTP status received (0 if the connection was closed unanswered)."""
    context = nginx.tls_context()
    raw = socket.create_connection((harness.HOST, nginx.ports[443]), timeout=60)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")

    def finish() -> int:
        try:
            sock.sendall(b"Connection: close\r\n\r\n")
            head = sock.recv(64)
        except OSError:
            head = b""
        finally:
            sock.close()
        return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else 0

    return finish


def status_of(nginx: harness.Nginx, path: str) -> int:
    with nginx.client() as client:
        return client.get(path).status_code


def reloaded(server: harness.Server, before: set[int]) -> bool:
    """Both workers replaced; or, for Uvicorn, the reload given up because a new worker was not
    ready within --timeout-worker-healthcheck (5 s), which happens on a loaded machine."""
    workers = {p.pid for p in server.workers()}
    return (len(workers) == 2 and not workers & before) or "aborting the restart" in server.log()


def arrival_spread(nginx: harness.Nginx, path: str) -> tuple[float, float]:
    """Stream ``path`` through nginx; return (time from the first piece to the last, total time)."""
    times = []
    with nginx.client() as client:
        start = time.monotonic()
        with client.stream("GET", path) as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                times.append(time.monotonic())
    return times[-1] - times[0], times[-1] - start


def test_streaming_arrives_piece_by_piece_only_without_buffering(tmp_path: Path) -> None:
    """Five ticks 0.5 s apart (2 s in all). With nginx's default buffering they arrive together
    at the end; under /stream/ (proxy_buffering off) or with X-Accel-Buffering: no they arrive
    spread over most of the 2 s. Compared with the response's own duration, never absolute."""
    with app_behind_nginx("proxy/gunicorn_uvicorn_worker.sh:behind-nginx", tmp_path) as (_, nginx):
        buffered, total = arrival_spread(nginx, "/ticks")
        assert buffered < 0.25 * total, (
            f"buffered: pieces spread over {buffered:.2f}s of {total:.2f}s"
        )
        for path in ("/stream/ticks", "/ticks?no_buffering=true"):
            spread, total = arrival_spread(nginx, path)
            assert spread > 0.6 * total, f"{path}: pieces spread over {spread:.2f}s of {total:.2f}s"


def test_body_over_client_max_body_size_gets_413_before_the_app(tmp_path: Path) -> None:
    """client_max_body_size 1m: 2 MB get 413 from nginx and the app logs nothing; 0.5 MB pass."""
    with app_behind_nginx("proxy/gunicorn_uvicorn_worker.sh:behind-nginx", tmp_path) as (
        server,
        nginx,
    ):
        with nginx.client() as client:
            assert client.post("/upload", content=b"x" * 2_000_000).status_code == 413
            assert client.post("/upload", content=b"x" * 500_000).json() == {"bytes": 500_000}
        server.wait_for_log(r"upload received: 500000 bytes")
        assert server.log().count("upload received") == 1, "the 2 MB body never reached the app"


@pytest.mark.parametrize("command", ["proxy/gunicorn_uvicorn_worker.sh", "proxy/gunicorn_asgi.sh"])
def test_worker_killed_by_gunicorn_timeout_gives_502(command: str, tmp_path: Path) -> None:
    """A worker stuck in a blocking call is killed by --timeout 10, before nginx's
    proxy_read_timeout (30 s): nginx answers 502, and the next request is served."""
    with app_behind_nginx(f"{command}:behind-nginx", tmp_path) as (server, nginx):
        with nginx.client() as client:
            assert client.get("/stuck/20").status_code == 502
            assert client.get("/").status_code == 200
        assert "upstream prematurely closed connection" in nginx.log()
        server.wait_for_log(r"WORKER TIMEOUT")


def test_proxy_read_timeout_gives_504_and_upstream_down_gives_502(tmp_path: Path) -> None:
    """A request that waits (without blocking the worker) longer than proxy_read_timeout (30 s)
    gets 504 from nginx; with the app server stopped (connection refused), nginx answers 502."""
    with app_behind_nginx("proxy/gunicorn_uvicorn_worker.sh:behind-nginx", tmp_path) as (
        server,
        nginx,
    ):
        with nginx.client() as client:
            assert client.get("/slow/40").status_code == 504
            assert "upstream timed out" in nginx.log()
            server.stop(expect_clean=False)
            assert client.get("/").status_code == 502
            assert "Connection refused" in nginx.log()


@pytest.mark.parametrize("server_kind", BEHIND_NGINX.values(), ids=BEHIND_NGINX.keys())
def test_sighup_reload_through_nginx(server_kind: tuple[str, bool], tmp_path: Path) -> None:
    """A reader's request that is still arriving during a SIGHUP reload reaches nginx, not a
    worker: nginx reads it whole, then forwards it, and it is answered. A request in flight on an
    old worker is finished (within --graceful-timeout). Other requests get 200, or at worst a 502
    from nginx, never a reset."""
    command, _ = server_kind
    with app_behind_nginx(f"{command}:behind-nginx", tmp_path) as (server, nginx):
        before = {p.pid for p in server.workers()}
        half = half_sent(nginx)
        # A request in flight on an old worker (it waits 3 s) when the reload starts.
        in_flight, box = harness.in_background(status_of, nginx, "/slow/3")
        server.wait_for_log(r"slow request started")
        failures: list[str] = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                try:
                    with nginx.client() as client:
                        r = client.get("/")
                    if r.status_code != 200:
                        failures.append(f"HTTP {r.status_code}")
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        try:
            server.send_signal(signal.SIGHUP)
            harness.wait_until(lambda: reloaded(server, before), what="the reload is over",
                               timeout=60, server=server)
            assert half() == 200, "the half-sent request is answered after the reload"
            in_flight.join(60)
            assert box.get("result") == 200, "the old worker finishes the request in flight"
        finally:
            stop.set()
            thread.join(60)
        # What a client may see: a 502 when an old worker resets a connection it had accepted
        # but not read (a race, seen on a loaded machine); never a reset or a refused connection.
        assert set(failures) <= {"HTTP 502"}, f"through nginx, during the reload: {failures[:5]}"
        if failures:
            assert "reset by peer" in nginx.log() or "prematurely closed" in nginx.log()


@pytest.mark.parametrize("section", ["unix-socket", "unix-socket-untrusted"])
def test_unix_socket_upstream(section: str, tmp_path: Path) -> None:
    """Gunicorn bound to a Unix socket, nginx's upstream pointing at it. A socket peer has no
    address, so no address list can name nginx: only '*' applies its headers (the socket file's
    permissions decide who can connect). Without it the app sees no client address and http."""
    with app_behind_nginx(f"proxy/gunicorn_uvicorn_worker.sh:{section}", tmp_path,
                          NGINX_CONFIGS["upstream_unix.conf"]) as (server, nginx):
        server.wait_for_workers(2)
        answer = via_nginx(nginx).json()
        if section == "unix-socket":
            assert sees(answer) == (READER, "https"), answer
        else:
            assert (answer["client"], answer["scheme"]) == (None, "http"), answer


#: server -> the command that serves the app under /api/ (each in its own way)
ROOT_PATHS = {
    "uvicorn --root-path": "proxy/uvicorn.sh:root-path",
    "gunicorn asgi --root-path": "proxy/gunicorn_asgi.sh:root-path",
    "gunicorn + uvicorn-worker, FastAPI(root_path=)": "proxy/gunicorn_uvicorn_worker.sh:root-path",
    "fastapi run --root-path": "proxy/fastapi_run.sh:root-path",
}


@pytest.mark.parametrize("command", ROOT_PATHS.values(), ids=ROOT_PATHS.keys())
def test_app_under_a_path_prefix_with_root_path(command: str, tmp_path: Path) -> None:
    """nginx serves the app under /api/ (prefix.conf strips it); with root_path set to /api the
    docs page loads /api/openapi.json, which nginx serves, and links start with https://.../api/."""
    with app_behind_nginx(command, tmp_path, NGINX_CONFIGS["prefix.conf"]) as (server, nginx):
        with nginx.client() as client:
            docs = client.get("/api/docs")
            assert docs.status_code == 200
            assert "'/api/openapi.json'" in docs.text, "the docs page asks for the prefixed schema"
            assert client.get("/api/openapi.json").status_code == 200
            assert client.get("/api/").json()["url"] == "https://127.0.0.1/api/"


def test_without_root_path_the_docs_break_under_a_prefix(tmp_path: Path) -> None:
    """The common mistake: the same nginx config, the app started without root_path. The API
    answers, but the docs page asks for /openapi.json, which nginx does not serve (404), and
    the links the app builds lack /api."""
    with app_behind_nginx("proxy/uvicorn.sh:behind-nginx", tmp_path,
                          NGINX_CONFIGS["prefix.conf"]) as (server, nginx):
        with nginx.client() as client:
            docs = client.get("/api/docs")
            assert docs.status_code == 200 and "'/openapi.json'" in docs.text
            assert client.get("/openapi.json").status_code == 404
            assert client.get("/api/").json()["url"] == "https://127.0.0.1/"


def test_uvicorn_worker_ignores_gunicorns_root_path(tmp_path: Path) -> None:
    """Gunicorn accepts --root-path with uvicorn-worker, but the worker does not pass it on:
    the docs page still asks for /openapi.json and links lack /api, as with no root_path."""
    with app_behind_nginx("proxy/gunicorn_uvicorn_worker.sh:root-path-ignored", tmp_path,
                          NGINX_CONFIGS["prefix.conf"]) as (server, nginx):
        assert "--root-path /api" in server.command
        with nginx.client() as client:
            assert "'/openapi.json'" in client.get("/api/docs").text
            assert client.get("/api/").json()["url"] == "https://127.0.0.1/"
