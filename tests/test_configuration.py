"""docs/configuration.md: where Gunicorn's settings come from, the reviewed TLS line, logs, checks.

Every command runs in a fresh folder laid out like the reader's: a copy of ``main.py`` and
whatever else the command reads (``gunicorn.conf.py``, ``tls/``). A config file that names an
address gets the same documented rewrite as the commands (0.0.0.0 -> 127.0.0.1, public
ports -> the free ports the command uses). Certificates are made per test module by trustme
and written to ``tls/key.pem``, ``tls/cert.pem`` and ``tls/ca.pem``, the relative paths the
commands use.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import trustme

import harness

# The TLS 1.2 suite the reviewed --ciphers list allows for an ECDSA key, and one it leaves out.
LISTED_CIPHER = "ECDHE-ECDSA-AES256-GCM-SHA384"
UNLISTED_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"


# --------------------------------------------------------------------------- helpers


def project(tmp: Path, *refs: str, ports: dict[int, int] | None = None) -> Path:
    """A folder holding copies of the given snippets (config files with the documented rewrite)."""
    folder = tmp / "project"
    folder.mkdir(exist_ok=True)
    for ref in refs:
        snip = harness.snippet(ref)
        text = snip.text
        if ports is not None and snip.path.name.endswith(".conf.py"):
            text = harness.rewrite(text, ports)
        (folder / snip.path.name).write_text(text, "utf-8")
    return folder


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()  # ECDSA keys, as trustme makes by default


def add_tls(folder: Path, ca: trustme.CA) -> Path:
    tls = folder / "tls"
    tls.mkdir()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tls / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tls / "cert.pem"))
    ca.cert_pem.write_to_path(str(tls / "ca.pem"))
    return folder


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def handshake(
    port: int,
    ca: trustme.CA,
    version: ssl.TLSVersion,
    cipher: str | None = None,
) -> str:
    """Connect with a client that speaks only ``version`` (and ``cipher``); return what was
    agreed."""
    context = trusting(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated in Python
        context.minimum_version = context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer it; the server decides
    if cipher:
        context.set_ciphers(cipher)
    with (
        socket.create_connection((harness.HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version()


def handshake_refused(port: int, ca: trustme.CA, version: ssl.TLSVersion,
                      cipher: str | None = None) -> bool:
    """The server refuses a TLS handshake with this version (and cipher)."""
    try:
        handshake(port, ca, version, cipher)
    except (ssl.SSLError, ConnectionError):
        return True
    return False


def three_at_once(server: harness.Server) -> list[httpx.Response]:
    with server.client() as client, ThreadPoolExecutor(3) as pool:
        return list(pool.map(lambda _: client.get("/rendezvous"), range(3)))


# --------------------------------------------------------------------------- three ways


THREE_WAYS = {
    "command line": ("configuration/cli.sh", ("configuration/main.py",)),
    "GUNICORN_CMD_ARGS": ("configuration/env.sh", ("configuration/main.py",)),
    "gunicorn.conf.py": (
        "configuration/conf_file.sh",
        ("configuration/main.py", "configuration/gunicorn.conf.py"),
    ),
}


@pytest.mark.parametrize("way", THREE_WAYS.values(), ids=THREE_WAYS.keys())
def test_three_ways_give_the_same_server(way: tuple[str, tuple[str, ...]], tmp_path: Path) -> None:
    """Each way starts two uvicorn_worker workers on port 8000, without an access log."""
    command, files = way
    ports = harness.port_map()
    folder = project(tmp_path, *files, ports=ports)
    with harness.serving(
        command, log_dir=tmp_path, cwd=folder, ports=ports, public_port=8000
    ) as server:
        server.wait_for_workers(2)
        assert server.get("/").status_code == 200
        log = server.log()
        assert "Using worker: uvicorn_worker.UvicornWorker" in log
        assert '"GET / HTTP/1.1"' not in log, "no access log unless --access-logfile is set"


def test_command_line_beats_env_beats_config_file(tmp_path: Path) -> None:
    """File: 2 workers on 8000; GUNICORN_CMD_ARGS: 4 on 8080; command line: 3 -> 3 on 8080."""
    ports = harness.port_map()
    folder = project(
        tmp_path, "configuration/main.py", "configuration/gunicorn.conf.py", ports=ports
    )
    with harness.serving(
        "configuration/precedence.sh", log_dir=tmp_path, cwd=folder, ports=ports
    ) as server:
        assert server.port == ports[8080]
        assert len(server.wait_for_workers(3)) == 3, "--workers=3 on the command line wins"
        assert server.get("/").status_code == 200, "the env var's bind replaced the file's"
        with pytest.raises(httpx.ConnectError):
            harness.http_get(f"http://{harness.HOST}:{ports[8000]}/", timeout=3)
        assert "Using worker: uvicorn_worker.UvicornWorker" in server.log(), "the file still counts"


def test_print_config_shows_the_merged_settings(tmp_path: Path) -> None:
    """--print-config: the file beats WEB_CONCURRENCY; GUNICORN_CMD_ARGS beats the file."""
    ports = harness.port_map()
    folder = project(
        tmp_path, "configuration/main.py", "configuration/gunicorn.conf.py", ports=ports
    )
    from_file = {
        "accesslog": "None",
        "bind": f"['127.0.0.1:{ports[8000]}']",
        "worker_class": "uvicorn_worker.UvicornWorker",
        "workers": "2",
    }
    for env, expected in [
        ({"WEB_CONCURRENCY": "5"}, from_file),
        (
            {"WEB_CONCURRENCY": "5", "GUNICORN_CMD_ARGS": "--workers=4"},
            {**from_file, "workers": "4"},
        ),
    ]:
        result = harness.run(
            "configuration/print_config.sh:resolved",
            cwd=folder,
            ports=ports,
            log_dir=tmp_path,
            env=env,
        )
        settings = dict(re.findall(r"^(\w+)\s+= (.*)$", result.output, re.M))
        assert settings == expected, (env, result.output)


@pytest.mark.parametrize(
    "command",
    ["configuration/web_concurrency.sh:gunicorn", "configuration/web_concurrency.sh:uvicorn"],
)
def test_web_concurrency_sets_the_default_worker_count(command: str, tmp_path: Path) -> None:
    folder = project(tmp_path, "configuration/main.py")
    with harness.serving(command, log_dir=tmp_path, cwd=folder) as server:
        assert len(server.wait_for_workers(2)) == 2


def test_port_env_var_changes_the_default_bind_to_every_interface(tmp_path: Path) -> None:
    folder = project(tmp_path, "configuration/main.py")
    ports = harness.port_map()
    result = harness.run(
        "configuration/print_config.sh:port", cwd=folder, ports=ports, log_dir=tmp_path
    )
    assert re.search(rf"^bind\s+= \['0\.0\.0\.0:{ports[8000]}'\]$", result.output, re.M), (
        result.output
    )


# --------------------------------------------------------------------------- the reviewed line


def test_reviewed_line_never_serves_with_the_uvicorn_worker(tmp_path: Path, ca: trustme.CA) -> None:
    """--ssl-version=2 reaches uvicorn as the string "2": every worker dies at boot, forever."""
    folder = add_tls(project(tmp_path, "configuration/main.py"), ca)
    with harness.serving(
        "configuration/reviewed_line.sh:uvicorn-worker", log_dir=tmp_path, cwd=folder,
        ready_path=None, scheme="https", verify=trusting(ca),
    ) as server:
        failure = r"TypeError: 'str' object cannot be interpreted as an integer"
        server.wait_for_log(rf"(?s){failure}.*{failure}", timeout=40)
        server.wait_for_log(r"(?s)(Booting worker with pid.*){4}", timeout=40)
        log = server.log()
        assert "Warning: option `ssl_version` is deprecated and it is ignored" in log
        assert "ctx = ssl.SSLContext(ssl_version)" in log, "the crash is in uvicorn's SSL setup"
        assert len(re.findall(r"Booting worker with pid", log)) > 3, (
            "the master keeps replacing them"
        )
        assert not server.ready_worker_pids()
        with pytest.raises(httpx.TransportError):
            harness.http_get(server.url("/"), verify=trusting(ca), timeout=1)
        # uvicorn.workers is deprecated, but Python hides DeprecationWarning: the log never says so.
        assert "uvicorn.workers` module is deprecated" not in log


SSL_VERSION_LINES = {
    "--ssl-version 2": "configuration/ssl_version.sh:number",
    "--ssl-version TLSv1_2": "configuration/ssl_version.sh:name",
    "GUNICORN_CMD_ARGS=--ssl-version=TLSv1_2": "configuration/ssl_version.sh:env",
}


@pytest.mark.parametrize("command", SSL_VERSION_LINES.values(), ids=SSL_VERSION_LINES.keys())
def test_any_ssl_version_crash_loops_the_uvicorn_worker(command: str, tmp_path: Path,
                                                        ca: trustme.CA) -> None:
    """Whatever the value, on the command line or in GUNICORN_CMD_ARGS, uvicorn-worker hands
    the string to uvicorn's ssl.SSLContext(): every worker dies at boot and is replaced."""
    folder = add_tls(project(tmp_path, "configuration/main.py"), ca)
    with harness.serving(
        command, log_dir=tmp_path, cwd=folder, ready_path=None, scheme="https", verify=trusting(ca),
    ) as server:
        failure = r"TypeError: 'str' object cannot be interpreted as an integer"
        server.wait_for_log(rf"(?s){failure}.*{failure}", timeout=40)
        server.wait_for_log(r"(?s)(Booting worker with pid.*){3}", timeout=40)
        assert "ctx = ssl.SSLContext(ssl_version)" in server.log()
        assert not server.ready_worker_pids()
        with pytest.raises(httpx.TransportError):  # nothing answers; the client waits
            harness.http_get(server.url("/"), verify=trusting(ca), timeout=1)


def test_original_line_serves_https(tmp_path: Path, ca: trustme.CA) -> None:
    """The line the notes asked about, before any review added to it, serves HTTPS with three
    workers (its worker class is deprecated, silently)."""
    folder = add_tls(project(tmp_path, "configuration/main.py"), ca)
    with harness.serving(
        "configuration/original_line.sh", log_dir=tmp_path, cwd=folder,
        scheme="https", verify=trusting(ca),
    ) as server:
        assert len(server.wait_for_workers(3)) == 3
        assert server.get("/").json()["scheme"] == "https"
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        log = server.log()
        assert "Using worker: uvicorn.workers.UvicornWorker" in log
        assert "Traceback" not in log and "deprecated" not in log, log


def test_uvicorn_workers_module_is_deprecated() -> None:
    r = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import uvicorn.workers"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "The `uvicorn.workers` module is deprecated. Please use `uvicorn-worker`" in r.stderr


def test_reviewed_line_with_the_asgi_worker_ignores_threads_and_ssl_version(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """The asgi worker starts, warns twice, and serves TLS exactly as it would without them."""
    folder = add_tls(project(tmp_path, "configuration/main.py"), ca)
    with harness.serving(
        "configuration/reviewed_line.sh:asgi", log_dir=tmp_path, cwd=folder,
        scheme="https", verify=trusting(ca),
    ) as server:
        server.wait_for_workers(3)
        log = server.log()
        assert "Warning: option `ssl_version` is deprecated and it is ignored" in log
        assert "ASGI worker does not use threads configuration" in log
        # "2" is ssl.PROTOCOL_TLS: negotiate the highest version both sides speak.
        assert int(ssl.PROTOCOL_TLS) == 2
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_2, LISTED_CIPHER) == "TLSv1.2"
        assert handshake_refused(server.port, ca, ssl.TLSVersion.TLSv1_1)
        # --ciphers works: a TLS 1.2 client limited to an unlisted suite is refused
        assert handshake_refused(server.port, ca, ssl.TLSVersion.TLSv1_2, UNLISTED_CIPHER)


def test_threads_does_nothing_for_the_uvicorn_worker(tmp_path: Path) -> None:
    folder = project(tmp_path, "configuration/main.py")
    with harness.serving("configuration/threads.sh", log_dir=tmp_path, cwd=folder) as server:
        server.wait_for_workers(1)
        answers = three_at_once(server)  # each waits until all three are in: 3 threads at once
        assert [r.status_code for r in answers] == [200, 200, 200], "three threads, not two"
        assert len({r.json()["thread_id"] for r in answers}) == 3
        assert {r.json()["thread"] for r in answers} == {"AnyIO worker thread"}
        assert "threads" not in server.log().lower(), "and nothing warns about it"


def test_threads_turns_the_default_worker_into_gthread(tmp_path: Path) -> None:
    """--threads 2 without --worker-class: Gunicorn quietly runs gthread, a WSGI worker, and
    FastAPI answers every request with HTTP 500."""
    folder = project(tmp_path, "configuration/main.py")
    with harness.serving("configuration/threads_default_worker.sh", log_dir=tmp_path, cwd=folder,
                         ready_path=None) as server:
        server.wait_for_log(r"Booting worker with pid")
        server.wait_for_workers(1)
        assert server.get("/").status_code == 500
        server.wait_for_log(r"TypeError: FastAPI\.__call__\(\) missing 1 required positional "
                            r"argument: 'send'")
        log = server.log()
        assert "Using worker: gthread" in log
        assert not re.search(r"\[WARNING\]|Warning:", log), "nothing warns about the switch"


def test_corrected_line_serves_https_that_clients_verify(tmp_path: Path, ca: trustme.CA) -> None:
    folder = add_tls(project(tmp_path, "configuration/main.py"), ca)
    with harness.serving(
        "configuration/corrected_line.sh", log_dir=tmp_path, cwd=folder,
        scheme="https", verify=trusting(ca),
    ) as server:
        server.wait_for_workers(3)
        ok = harness.run("configuration/check_https.sh:verified", server=server, cwd=folder)
        assert re.fullmatch(r'\{"pid":\d+,"scheme":"https"\}', ok.output.strip()), ok.output
        bad = harness.run(
            "configuration/check_https.sh:unverified", server=server, cwd=folder, check=False
        )
        assert bad.returncode == 60, bad.output  # curl: peer certificate cannot be authenticated
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            harness.http_get(server.url("/"), timeout=10)  # the system's CAs do not know this one
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        assert handshake_refused(server.port, ca, ssl.TLSVersion.TLSv1_1)
        # ...because Python's contexts start at TLS 1.2, not because of any option here
        assert ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).minimum_version == ssl.TLSVersion.TLSv1_2
        server.wait_for_log(r'127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200')  # --access-logfile=-
        log = server.log()
        assert "Warning" not in log and "Traceback" not in log, log


def test_ciphers_limit_tls12_only(tmp_path: Path, ca: trustme.CA) -> None:
    folder = add_tls(project(tmp_path, "configuration/main.py"), ca)
    with harness.serving(
        "configuration/tls.sh:ciphers",
        log_dir=tmp_path,
        cwd=folder,
        scheme="https",
        verify=trusting(ca),
    ) as server:
        server.wait_for_workers(1)
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_2, LISTED_CIPHER) == "TLSv1.2"
        assert handshake_refused(server.port, ca, ssl.TLSVersion.TLSv1_2, UNLISTED_CIPHER)
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3", (
            "1.3 suites are separate"
        )


@pytest.mark.parametrize(
    ("command", "tls12_refused"),
    [
        ("configuration/tls.sh:tls13-asgi", True),
        ("configuration/tls.sh:tls13-uvicorn-worker", False),
    ],
)
def test_ssl_context_hook_sets_the_minimum_tls_version(
    command: str, tls12_refused: bool, tmp_path: Path, ca: trustme.CA
) -> None:
    """tls13.conf.py's ssl_context() is used by the asgi worker, never by uvicorn_worker."""
    folder = add_tls(project(tmp_path, "configuration/main.py", "configuration/tls13.conf.py"), ca)
    with harness.serving(
        command, log_dir=tmp_path, cwd=folder,
        scheme="https", verify=trusting(ca),
    ) as server:
        server.wait_for_workers(1)
        assert handshake(server.port, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert handshake_refused(server.port, ca, ssl.TLSVersion.TLSv1_2) is tls12_refused


# --------------------------------------------------------------------------- logs


def test_access_log_format_applies_to_the_asgi_worker_only(tmp_path: Path) -> None:
    folder = project(tmp_path, "configuration/main.py")
    with harness.serving(
        "configuration/access_log.sh:asgi", log_dir=tmp_path, cwd=folder
    ) as server:
        server.wait_for_workers(1)
        server.get("/?probe=1")
        server.wait_for_log(r'127\.0\.0\.1 "GET /\?probe=1 HTTP/1\.1" 200 \d+ \d+ms')
    uvicorn_worker = "configuration/access_log.sh:uvicorn-worker"
    with harness.serving(uvicorn_worker, log_dir=tmp_path, cwd=folder) as server:
        server.wait_for_workers(1)
        server.get("/?probe=2")
        server.wait_for_log(
            r'127\.0\.0\.1:\d+ - "GET /\?probe=2 HTTP/1\.1" 200'
        )  # uvicorn's format
        assert not re.search(r"\d+ms", server.log()), "--access-logformat was not used"


def test_log_file_in_a_missing_folder_stops_the_server(tmp_path: Path) -> None:
    folder = project(tmp_path, "configuration/main.py")
    result = harness.run(
        "configuration/log_files.sh", cwd=folder, log_dir=tmp_path, check=False, timeout=60
    )
    assert result.returncode == 1, result.output
    assert re.search(r"'log/(access|error)\.log' isn't writable", result.output), result.output


# --------------------------------------------------------------------------- checking a config


def test_check_config_passes_a_good_config(tmp_path: Path) -> None:
    """Exit 0, no output, and nothing bound: the check passes while another process holds the
    configured port (a real start would fail to bind it)."""
    ports = harness.port_map()
    folder = project(
        tmp_path, "configuration/main.py", "configuration/gunicorn.conf.py", ports=ports
    )
    with socket.create_server((harness.HOST, ports[8000])):  # the port gunicorn.conf.py binds
        result = harness.run("configuration/check_config.sh:ok", cwd=folder, ports=ports,
                             log_dir=tmp_path)
    assert result.returncode == 0 and result.output.strip() == "", result.output


@pytest.mark.parametrize(
    ("command", "code", "message"),
    [
        ("configuration/check_config.sh:bad-app", 1,
         "Failed to find attribute 'application' in 'main'."),
        ("configuration/check_config.sh:bad-value", 2,
         "argument -w/--workers: invalid int value: 'three'"),
    ],
)
def test_check_config_fails_a_broken_config(
    command: str, code: int, message: str, tmp_path: Path
) -> None:
    folder = project(tmp_path, "configuration/main.py")
    result = harness.run(command, cwd=folder, log_dir=tmp_path, check=False)
    assert result.returncode == code, result.output
    assert message in result.output


def test_check_config_misses_files_the_server_needs(tmp_path: Path) -> None:
    """No tls/ and no log/: --check-config exits 0, the real start exits 1."""
    folder = project(tmp_path, "configuration/main.py")
    result = harness.run(
        "configuration/check_config.sh:missing-files", cwd=folder, log_dir=tmp_path
    )
    assert result.returncode == 0, result.output
    start = harness.run(
        "configuration/corrected_line.sh", cwd=folder, log_dir=tmp_path, check=False
    )
    assert start.returncode == 1, start.output
    assert 'certfile "tls/cert.pem" does not exist' in start.output


def test_misspelt_setting_in_a_config_file_is_silently_ignored(tmp_path: Path) -> None:
    """`worker = 4` is skipped: the check passes and workers stays 1.

    gunicorn.conf.py (workers = 2) lies in the same folder: -c replaces it, it is not read.
    """
    ports = harness.port_map()
    folder = project(
        tmp_path, "configuration/main.py", "configuration/typo.conf.py",
        "configuration/gunicorn.conf.py", ports=ports,
    )
    result = harness.run("configuration/check_config.sh:typo", cwd=folder, log_dir=tmp_path)
    assert re.fullmatch(r"workers\s+= 1", result.output.strip()), result.output


# --------------------------------------------------------------------------- reference


def test_settings_reference_is_current(tmp_path: Path) -> None:
    """snippets/configuration/settings_reference.md (and its .vi.md and .zh.md) is what the
    installed Gunicorn generates (``python -m tools settings-reference``)."""
    harness.only_on_the_pinned_set(
        "the committed settings reference is generated from the pinned Gunicorn")
    fresh = tmp_path / "settings_reference.md"
    subprocess.run([sys.executable, "-m", "tools", "settings-reference", str(fresh)], check=True,
                   timeout=60, cwd=harness.ROOT, env=harness.base_env({"PORT": "1"}),
                   capture_output=True)
    for ref in ("configuration/settings_reference.md", "configuration/settings_reference.vi.md",
                "configuration/settings_reference.zh.md"):
        committed = harness.snippet(ref).path
        if (tmp_path / committed.name).read_text("utf-8") != committed.read_text("utf-8"):
            pytest.fail(
                f"{committed.relative_to(harness.ROOT)}: out of date with the installed Gunicorn; "
                "regenerate it with: python -m tools settings-reference",
                pytrace=False,
            )
