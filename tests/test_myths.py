"""docs/myths.md: the corrections that no topic page's test already shows.

Most myths on that page cite the tests of the page where their topic lives. This file holds
the few that have no home there:

* "port 8443 needs root" (note 002): the configuration page's corrected HTTPS line, run as an
  unprivileged user with no capabilities to bind low ports, serves on port 8443 itself (the one
  place a test keeps a public port instead of rewriting it to a free one), while the same line
  moved to port 443 is refused by the kernel;
* "Python >= 3.8" (note 003): the Python each pinned package declares it needs;
* "Hypercorn supports HTTP/3" (note 002): only with an extra this handbook does not install.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import tempfile
from importlib.metadata import metadata
from pathlib import Path

import pytest
import trustme
from packaging.specifiers import SpecifierSet

import harness

CORRECTED_LINE = "configuration/corrected_line.sh"  # binds 0.0.0.0:8443, three uvicorn workers
APP = "configuration/main.py"  # answers {"pid": ..., "scheme": ...}
NOBODY = 65534  # the conventional unprivileged user and group


def unprivileged(ref: str) -> tuple[harness.Snippet, int]:
    """The snippet's command with its last line (the server) run as an unprivileged user.

    When the suite runs as root, ``setpriv`` switches to ``nobody`` with no capabilities but
    ``dac_read_search`` (so it can read this machine's Python under /root); in particular
    without ``net_bind_service``, the one that allows binding a port below 1024. When the suite
    runs as another user, that user is already unprivileged.
    """
    snip = harness.snippet(ref)
    lines = harness.command_of(snip).splitlines()
    if os.geteuid() != 0:
        return harness.variant(snip, "\n".join(lines)), os.geteuid()
    prefix = (f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
              "--inh-caps=-all,+dac_read_search --ambient-caps=+dac_read_search --")
    lines[-1] = f"{prefix} {lines[-1]}"
    return harness.variant(snip, "\n".join(lines)), NOBODY


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder laid out as the configuration page says: main.py and tls/ with a key pair."""
    folder = tmp_path / "project"
    (folder / "tls").mkdir(parents=True)
    shutil.copy(harness.snippet(APP).path, folder / "main.py")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / "tls" / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "tls" / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "tls" / "ca.pem"))
    return folder


def trusting(folder: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(folder / "tls" / "ca.pem"))


def runtime_dir() -> dict[str, str]:
    """A control-socket directory the unprivileged server may write (the harness removes it)."""
    path = tempfile.mkdtemp(prefix="hb-run-", dir="/tmp")
    os.chmod(path, 0o777)  # a throwaway directory, for one server
    return {"XDG_RUNTIME_DIR": path}


def wait_until_free(port: int, timeout: float = 30) -> None:
    """Until 127.0.0.1:port can be bound again (a server that just stopped released it)."""
    def bindable() -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((harness.HOST, port))
            except OSError:
                return False
            return True

    harness.wait_until(bindable, what=f"127.0.0.1:{port} is free (nothing else on this "
                       "machine uses it)", timeout=timeout, interval=0.5)


def test_unprivileged_user_serves_https_on_port_8443(project: Path, log_dir: Path) -> None:
    """Ports from net.ipv4.ip_unprivileged_port_start (1024 by default) up need no privilege:
    the corrected HTTPS line serves on 8443 as nobody; on 443 the kernel refuses the bind."""
    threshold = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert threshold <= 1024, f"this machine raised the unprivileged port start to {threshold}"

    command, uid = unprivileged(CORRECTED_LINE)
    wait_until_free(8443)
    ports = {**harness.port_map(), 8443: 8443}  # keep the page's port: it is what is claimed
    with harness.serving(command, log_dir=log_dir, cwd=project, ports=ports, env=runtime_dir(),
                         scheme="https", verify=trusting(project)) as server:
        workers = server.wait_for_workers(3)
        main = server.main_process()
        assert server.port == 8443
        assert {p.uids().real for p in [main, *workers]} == {uid}, "every process is unprivileged"
        assert {c.laddr.port for c in main.net_connections("tcp") if c.status == "LISTEN"} == {8443}
        answer = server.get("/").json()
        assert answer["scheme"] == "https" and answer["pid"] in {w.pid for w in workers}

    # The same command and user on port 443: Gunicorn cannot bind, retries, and gives up.
    low = harness.start(command, log_dir=log_dir, cwd=project, env=runtime_dir(),
                        ports={**harness.port_map(), 8443: 443})
    try:
        rc = low.proc.wait(timeout=30)
    finally:
        low.stop(expect_clean=False)
    log = low.log()
    assert rc == 1, log
    assert "connection to ('127.0.0.1', 443) failed: [Errno 13] Permission denied" in log, log
    assert "Can't connect to ('127.0.0.1', 443)" in log, log


#: The oldest Python each pinned package installs on, from its own metadata (Requires-Python).
OLDEST_PYTHON = {"fastapi": "3.11", "gunicorn": "3.10", "uvicorn": "3.10", "uvicorn-worker": "3.9"}


def oldest_python(package: str) -> str:
    spec = SpecifierSet(metadata(package)["Requires-Python"])
    return next(f"3.{minor}" for minor in range(6, 20) if f"3.{minor}.0" in spec)


def test_pinned_packages_need_python_3_10_or_later() -> None:
    """Note 003 says Python 3.8; the pinned Gunicorn and Uvicorn need 3.10, FastAPI 3.11."""
    assert {name: oldest_python(name) for name in OLDEST_PYTHON} == OLDEST_PYTHON
    for name in OLDEST_PYTHON:
        spec = SpecifierSet(metadata(name)["Requires-Python"])
        assert "3.8.20" not in spec and "3.12.1" in spec, (name, str(spec))


def test_hypercorn_http3_needs_an_extra_not_installed_here() -> None:
    """Hypercorn serves HTTP/3 only with its h3 extra (aioquic), which the servers page's
    requirements do not install."""
    reader = harness.reader_env("servers")
    meta = reader.metadata("hypercorn")
    assert "h3" in meta.get_all("Provides-Extra")
    assert any(req.startswith("aioquic") and 'extra == "h3"' in req
               for req in meta.get_all("Requires-Dist"))
    with pytest.raises(harness.HarnessError, match="aioquic is not installed"):
        reader.version("aioquic")


#: How each page writes "What is true:" and the four verdicts, in the order the intro counts them.
VERDICTS = {
    "myths.md": ("What is true:", ["Wrong", "Outdated", "Partly right", "Not verified here"]),
    "myths.vi.md": ("Thực tế:", ["Sai", "Lỗi thời", "Đúng một phần", "Chưa kiểm chứng ở đây"]),
    "myths.zh.md": ("实际情况：", ["错误", "已过时", "部分正确", "此处未验证"]),
}


def verdict_counts(page: str) -> list[int]:
    label, verdicts = VERDICTS[page]
    text = (harness.DOCS / page).read_text("utf-8")
    # The first bold words after the label (zh may put a few words before them).
    found = re.findall(rf"{re.escape(label)}\*\*[^*\n]*?\*\*([^*]+)\*\*", text)
    assert len(found) == text.count("\n### "), f"{page}: an entry without a verdict"
    counts = [sum(1 for v in found if v.startswith(verdict)) for verdict in verdicts]
    assert sum(counts) == len(found), f"{page}: unknown verdicts in {sorted(set(found))}"
    return [len(found), *counts]


def intro_numbers(page: str) -> list[int]:
    """The numbers in the page's opening paragraph (after the title)."""
    text = (harness.DOCS / page).read_text("utf-8")
    after_title = text[re.search(r"^# .*$", text, re.M).end():]
    first_paragraph = after_title.strip().split("\n\n")[0]
    return [int(n) for n in re.findall(r"\d+", first_paragraph)]


@pytest.mark.parametrize("page", VERDICTS)
def test_intro_counts_match_the_verdicts(page: str) -> None:
    """The intro's "of the N claims, A wrong, B outdated, C partly right, D not verified"
    is counted from the verdicts on the same page, in every language."""
    assert intro_numbers(page) == verdict_counts(page), page
