"""docs/logging.md: one JSON logging setup for Uvicorn and both Gunicorn worker classes.

Every server here prints JSON lines (snippets/logging/logging.json + jsonlog.py), so the
harness's text patterns for "worker ready" do not apply: the tests read the JSON lines
instead. Requests carry their own X-Request-ID, so each access line can be matched to the
request that caused it. As on the proxy page, a request from 127.0.0.1 plays a proxy that the
servers trust by default, and one from 127.0.0.2 a client that reaches the server directly.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest

import harness

APP = harness.snippet("logging/main.py")  # with jsonlog.py and logging.json, in one folder
JSONLOG = harness.snippet("logging/jsonlog.py")
CONFIG = harness.snippet("logging/logging.json")
CONF_FILE = harness.snippet("logging/gunicorn.conf.py")
BARE = harness.snippet("logging/bare.py")
ROOT_ONLY = harness.snippet("logging/logging_root_only.json")
ACCESS_LINE = harness.snippet("logging/access_line.json")  # the page's example of one

#: server -> (its command, the message each worker logs when it is ready, the messages each
#: worker logs when it starts and stops, the messages the parent logs)
SERVERS = {
    "uvicorn --workers": (
        "logging/uvicorn.sh:default",
        "Application startup complete.",
        ["Started server process", "Application startup complete.", "Shutting down",
         "Application shutdown complete.", "Finished server process"],
        ["Uvicorn running on", "Started parent process", "Stopping parent process"],
    ),
    "gunicorn + uvicorn-worker": (
        "logging/gunicorn_uvicorn_worker.sh:default",
        "Application startup complete.",
        ["Booting worker with pid", "Started server process", "Application startup complete.",
         "Shutting down", "Application shutdown complete.", "Finished server process"],
        ["Starting gunicorn", "Listening at", "Handling signal: term", "Shutting down: Master"],
    ),
    "gunicorn asgi worker": (
        "logging/gunicorn_asgi.sh:default",
        "ASGI server listening",
        ["Booting worker with pid", "ASGI server listening", "Worker shutting down",
         "Worker exiting"],
        ["Starting gunicorn", "Listening at", "Handling signal: term", "Shutting down: Master"],
    ),
    "gunicorn asgi worker, gunicorn.conf.py": (
        "logging/gunicorn_asgi.sh:conf-file",
        "ASGI server listening",
        ["Booting worker with pid", "ASGI server listening", "Worker shutting down",
         "Worker exiting"],
        ["Starting gunicorn", "Listening at", "Handling signal: term", "Shutting down: Master"],
    ),
}
PROXY, DIRECT, CLIENT = "127.0.0.1", "127.0.0.2", "203.0.113.7"
REQUESTS = 6


# --------------------------------------------------------------------------- helpers


def lines(server: harness.Server) -> list[str]:
    return [ln for ln in server.log().splitlines() if ln.strip()]


def records(server: harness.Server) -> list[dict]:
    """Every line the server printed, parsed; a line that is not JSON fails with its text."""
    parsed = []
    for no, line in enumerate(lines(server), 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise server.fail(f"line {no} of its output is not JSON: {line[:200]!r}") from None
    return parsed


def ready_pids(server: harness.Server, message: str) -> set[int]:
    recs = filter(None, map(_try_json, lines(server)))
    return {r["pid"] for r in recs if r["message"].startswith(message)}


def _try_json(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def wait_for_ready_workers(server: harness.Server, message: str, count: int = 2) -> set[int]:
    return harness.wait_until(
        lambda: len(ready_pids(server, message)) >= count and ready_pids(server, message),
        what=f"{count} workers log {message!r}", timeout=60, server=server,
    )


def get(server: harness.Server, path: str, source: str = PROXY, **headers: str) -> httpx.Response:
    """GET path from the local address ``source``, on a new connection."""
    with server.client(transport=httpx.HTTPTransport(local_address=source)) as client:
        return client.get(path, headers=headers)


def access_lines(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r["logger"] in ("uvicorn.access", "gunicorn.access")]


def serve(ref: str, tmp_path: Path, folder: Path | None = None):
    return harness.serving(ref, log_dir=tmp_path, cwd=folder or APP.folder, ready_path=None)


# --------------------------------------------------------------------------- one run per server


@pytest.fixture(scope="module", params=SERVERS.values(), ids=SERVERS.keys())
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Start the server, send REQUESTS requests and one that fails, stop it; keep its log."""
    command, ready, per_worker, parent = request.param
    tmp = tmp_path_factory.mktemp("logging")
    with serve(command, tmp) as server:
        workers = wait_for_ready_workers(server, ready)
        ids = [f"req-{n}" for n in range(REQUESTS)]
        for rid in ids:
            assert get(server, "/", **{"X-Request-ID": rid}).status_code == 200
        boom = get(server, "/boom", **{"X-Request-ID": "req-boom"})
        assert boom.status_code == 500 and boom.headers["x-request-id"] == "req-boom"
        server.stop()
    return {"records": records(server), "workers": workers, "ids": ids,
            "per_worker": per_worker, "parent": parent, "server": server}


def test_every_line_is_json_from_startup_to_shutdown(run: dict) -> None:
    """Every line parses as JSON (records() fails otherwise), and no start or stop line is lost
    or doubled: each worker logs the server's start/stop lines and the app's lifespan lines
    exactly once, and the parent its own."""
    recs = run["records"]
    for pid in run["workers"]:
        said = Counter(r["message"] for r in recs if r["pid"] == pid)
        for message in [*run["per_worker"], "app started", "app stopping"]:
            found = sum(n for m, n in said.items() if m.startswith(message))
            assert found == 1, f"worker {pid} logged {message!r} {found} times"
    for message in run["parent"]:
        found = [r for r in recs if r["message"].startswith(message)]
        assert len(found) == 1, f"the parent logged {message!r} {len(found)} times"
        assert found[0]["pid"] not in run["workers"]


def test_one_access_line_per_request_with_its_request_id(run: dict) -> None:
    """Exactly one access line per request; the ID the middleware set is in it and in the
    app's own line for that request."""
    recs = run["records"]
    access = access_lines(recs)
    assert len(access) == REQUESTS + 1, [a["message"] for a in access]
    assert sorted(a["request_id"] for a in access) == sorted([*run["ids"], "req-boom"])
    for rid in run["ids"]:
        app_lines = [r for r in recs if r["logger"] == "app" and r.get("request_id") == rid]
        assert [r["message"] for r in app_lines] == ["saying hello"]
        (line,) = [a for a in access if a["request_id"] == rid]
        assert (line["method"], line["path"], line["status"]) == ("GET", "/", 200)
        if line["logger"] == "uvicorn.access":
            assert line.keys() == json.loads(ACCESS_LINE.text).keys(), "the page's example"


def test_an_error_is_one_line_with_its_traceback(run: dict) -> None:
    """The failing request gives exactly one error line, with the traceback inside the JSON
    and the request ID; the access line says 500."""
    recs = run["records"]
    errors = [r for r in recs if "exception" in r]
    assert len(errors) == 1, [e["message"] for e in errors]
    assert errors[0]["request_id"] == "req-boom"
    assert "RuntimeError: something broke" in errors[0]["exception"]
    (line,) = [a for a in access_lines(recs) if a["request_id"] == "req-boom"]
    assert line["status"] == 500


# --------------------------------------------------------------------------- the client address

#: command -> (access-line client for the trusted proxy's request, for the direct client's)
CLIENT_ADDRESS = {
    "logging/uvicorn.sh:default": (CLIENT, DIRECT),
    "logging/gunicorn_uvicorn_worker.sh:default": (CLIENT, DIRECT),
    "logging/uvicorn.sh:trust-proxy": (PROXY, DIRECT),
    "logging/gunicorn_uvicorn_worker.sh:trust-proxy": (PROXY, DIRECT),
    "logging/gunicorn_asgi.sh:default": (PROXY, DIRECT),
    "logging/gunicorn_asgi.sh:trust-all": (PROXY, DIRECT),
}


@pytest.mark.parametrize("command", CLIENT_ADDRESS)
def test_access_line_client_is_the_real_one_only_from_a_trusted_proxy(
    command: str, tmp_path: Path
) -> None:
    """Both requests send X-Forwarded-For: 203.0.113.7. Uvicorn (alone or as the worker) logs it
    only for the address it trusts (127.0.0.1 by default; not once the list names 10.0.0.1);
    Gunicorn's asgi worker always logs the TCP peer, even when it trusts everyone."""
    from_proxy, from_direct = CLIENT_ADDRESS[command]
    ready = "ASGI server listening" if "asgi" in command else "Application startup complete."
    with serve(command, tmp_path) as server:
        wait_for_ready_workers(server, ready)
        get(server, "/", PROXY, **{"X-Forwarded-For": CLIENT, "X-Request-ID": "via-proxy"})
        get(server, "/", DIRECT, **{"X-Forwarded-For": CLIENT, "X-Request-ID": "direct"})
        harness.wait_until(lambda: len(access_lines(records(server))) == 2,
                           what="two access lines", server=server)
        seen = {a["request_id"]: a["client"] for a in access_lines(records(server))}
    assert seen == {"via-proxy": from_proxy, "direct": from_direct}


# --------------------------------------------------------------------------- what passes through


@pytest.mark.parametrize("command, honoured", [
    ("logging/gunicorn_asgi.sh:access-logformat", True),
    ("logging/gunicorn_uvicorn_worker.sh:access-logformat", False),
])
def test_access_logformat_is_ignored_by_the_uvicorn_worker(
    command: str, honoured: bool, tmp_path: Path
) -> None:
    """--access-logformat shapes the asgi worker's access message; the Uvicorn worker logs
    Uvicorn's own message and never reads it."""
    ready = "ASGI server listening" if "asgi" in command else "Application startup complete."
    with serve(command, tmp_path) as server:
        wait_for_ready_workers(server, ready)
        get(server, "/search?q=1")
        harness.wait_until(lambda: access_lines(records(server)), what="an access line",
                           server=server)
        (line,) = access_lines(records(server))
    assert line["path"] == "/search?q=1"
    if honoured:
        assert line["message"].startswith('127.0.0.1 "GET /search?q=1 HTTP/1.1" 404 '), line
        assert line["message"].endswith("ms")
    else:
        assert re.fullmatch(r'127\.0\.0\.1:\d+ - "GET /search\?q=1 HTTP/1\.1" 404', line["message"])


def test_a_root_only_config_leaves_gunicorn_in_plain_text_and_loses_access_lines(
    tmp_path: Path,
) -> None:
    """logging_root_only.json gives only the root logger the JSON handler: the app's lines are
    JSON, but Gunicorn's and the Uvicorn worker's stay plain text, and no access line is
    printed at all."""
    with serve("logging/gunicorn_uvicorn_worker.sh:root-only", tmp_path) as server:
        harness.wait_until(
            lambda: sum("Application startup complete" in ln for ln in lines(server)) == 2,
            what="two workers ready", server=server)
        assert get(server, "/", **{"X-Request-ID": "r1"}).status_code == 200
        harness.wait_until(lambda: "saying hello" in server.log(), what="the app's line",
                           server=server)
        server.stop()
    parsed = [(ln, _try_json(ln)) for ln in lines(server)]
    plain = [ln for ln, rec in parsed if rec is None]
    assert any("Starting gunicorn" in ln for ln in plain)
    assert any("Application startup complete" in ln for ln in plain)
    assert all(rec["logger"] == "app" for _, rec in parsed if rec), "only the app's lines are JSON"
    assert not any('"GET / HTTP/1.1"' in ln for ln in lines(server)), "no access line"


def test_asgi_worker_logs_no_traceback_for_an_error_fastapi_answered(tmp_path: Path) -> None:
    """bare.py has no middleware: FastAPI answers the exception with 500 and re-raises it, and
    Gunicorn's asgi worker logs that only at debug level. The access line is the only trace."""
    with serve("logging/gunicorn_asgi.sh:bare", tmp_path, folder=BARE.folder) as server:
        wait_for_ready_workers(server, "ASGI server listening")
        assert get(server, "/boom").status_code == 500
        harness.wait_until(lambda: access_lines(records(server)), what="the access line",
                           server=server)
        server.stop()
    recs = records(server)
    assert [a["status"] for a in access_lines(recs)] == [500]
    assert not [r for r in recs if "exception" in r or r["level"] == "ERROR"]
    assert "something broke" not in server.log()


def test_snippets_are_one_setup() -> None:
    """The three servers and gunicorn.conf.py read the same logging.json, which names jsonlog."""
    config = json.loads(CONFIG.text)
    assert config["formatters"]["json"]["()"] == f"{JSONLOG.path.stem}.JsonFormatter"
    assert f'"{CONFIG.path.name}"' in CONF_FILE.text
    assert json.loads(ROOT_ONLY.text)["loggers"] == {}
