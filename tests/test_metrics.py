"""docs/metrics.md: Prometheus and StatsD numbers from a server with several workers.

Every request below opens a new connection, so either worker can take it (a kept-alive
connection would stay on one worker). The multiprocess folder goes under the test's own
TMPDIR, which the serve scripts read, so parallel tests never share one. The StatsD tests
listen on a UDP socket on 127.0.0.1, on the free port that replaces the page's 8125.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.parser import text_string_to_metric_families

import harness

APP = harness.snippet("metrics/main.py")
CONF = harness.snippet("metrics/multiproc.conf.py")  # read by serve_multiproc.sh (-c)
STATSD = "metrics/statsd.sh"  # one section per worker class
STATSD_PORT = 8125
# Servers are waited for through their logs (wait_for_workers), not by polling GET /, which
# would add requests to the counts (ready_path=None).


def wait_for_two_workers(server: harness.Server) -> None:
    """wait_for_workers, once the command's shell has become the server (a first log line)."""
    server.wait_for_log(r"Booting worker|Started server process", timeout=60)
    server.wait_for_workers(2, timeout=60)


@contextlib.contextmanager
def two_workers(ref: str, tmp_path: Path, **kwargs) -> Iterator[harness.Server]:
    """Serve the page's command with its multiprocess folder under the test's own TMPDIR,
    once both workers are ready."""
    env = {"TMPDIR": str(tmp_path)}
    with harness.serving(ref, log_dir=tmp_path, env=env, ready_path=None, **kwargs) as server:
        wait_for_two_workers(server)
        yield server


def get_pid(server: harness.Server) -> int:
    return server.get("/").json()["pid"]


def scrape(server: harness.Server) -> dict[str, float]:
    """GET /metrics on a new connection; the app_ samples by name."""
    text = server.get("/metrics").text
    return {s.name: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name.startswith("app_")}


def kill_one_worker(server: harness.Server) -> int:
    """SIGKILL one worker and wait until the parent has replaced it; return the dead PID."""
    before = {w.pid for w in server.wait_for_workers(2)}
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    harness.wait_until(
        lambda: len(now := {w.pid for w in server.workers()}) == 2 and victim not in now,
        what=f"worker {victim} is replaced", timeout=60, server=server)
    server.wait_for_workers(2, timeout=60)
    return victim


# --------------------------------------------------------------------------- default registry


def test_default_registry_counts_each_worker_alone(tmp_path: Path) -> None:
    """Without multiprocess mode, /metrics shows the count of the worker that answered the
    scrape: scrapes give different numbers, each one worker's, and never the total."""
    with harness.serving("metrics/serve_single.sh", log_dir=tmp_path, ready_path=None) as server:
        wait_for_two_workers(server)
        served: Counter[int] = Counter()

        def one_more() -> bool:
            served[get_pid(server)] += 1
            return len(served) == 2 and len(set(served.values())) == 2

        harness.wait_until(one_more, what="both workers served requests, a different number each",
                           timeout=120, server=server, describe=lambda: repr(served))
        seen: set[float] = set()

        def scrape_again() -> bool:
            seen.add(scrape(server)["app_requests_total"])
            return len(seen) >= 2

        harness.wait_until(scrape_again, what="scrapes land on both workers", timeout=120,
                           server=server, describe=lambda: repr(seen))
    assert seen == set(served.values()), (seen, served)
    assert sum(served.values()) not in seen


# --------------------------------------------------------------------------- multiprocess mode


def test_multiprocess_total_equals_requests_sent_across_a_killed_worker(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR and the child_exit hook, every scrape shows the total of
    all workers, the killed one's requests included, and the live-worker gauge stays at 2."""
    folder = tmp_path / "prometheus-multiproc"
    with two_workers("metrics/serve_multiproc.sh", tmp_path) as server:
        for _ in range(10):
            get_pid(server)
        for _ in range(4):
            assert scrape(server) == {"app_requests_total": 10, "app_live_workers": 2}
        dead = kill_one_worker(server)
        for _ in range(5):
            get_pid(server)
        for _ in range(4):
            assert scrape(server) == {"app_requests_total": 15, "app_live_workers": 2}
        files = sorted(p.name for p in folder.iterdir())
        assert f"counter_{dead}.db" in files, "the dead worker's counts are kept"
        assert f"gauge_livesum_{dead}.db" not in files, "its live gauge was removed"
        shown = harness.run("metrics/scrape.sh", server=server).output.splitlines()
        assert sorted(shown) == ["app_live_workers 2.0", "app_requests_total 15.0"]


def test_uvicorn_workers_keep_counting_a_dead_worker_as_live(tmp_path: Path) -> None:
    """uvicorn --workers has no child_exit hook: counters still add up, but a livesum gauge
    keeps the killed worker's value, so it reads 3 with two workers running."""
    with two_workers("metrics/serve_multiproc_uvicorn.sh", tmp_path) as server:
        for _ in range(10):
            get_pid(server)
        assert scrape(server) == {"app_requests_total": 10, "app_live_workers": 2}
        kill_one_worker(server)
        for _ in range(5):
            get_pid(server)
        assert scrape(server) == {"app_requests_total": 15, "app_live_workers": 3}


def test_metric_files_outlive_the_server_so_the_script_empties_the_folder(tmp_path: Path) -> None:
    """After a stop, the folder still holds the counts (they would be added to the next run's);
    serve_multiproc.sh empties it, so the next run starts from zero."""
    folder = tmp_path / "prometheus-multiproc"
    with two_workers("metrics/serve_multiproc.sh", tmp_path) as server:
        for _ in range(3):
            get_pid(server)
    left = CollectorRegistry()
    multiprocess.MultiProcessCollector(left, path=str(folder))
    assert left.get_sample_value("app_requests_total") == 3, "the old counts are still there"
    with two_workers("metrics/serve_multiproc.sh", tmp_path) as server:
        assert scrape(server)["app_requests_total"] == 0


def test_the_hook_breaks_a_server_without_the_multiproc_dir(tmp_path: Path) -> None:
    """Saved as gunicorn.conf.py, the hook is read by serve_single.sh too, which sets no
    PROMETHEUS_MULTIPROC_DIR: at the stop, child_exit raises and the master dies with it."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "main.py").write_text(APP.path.read_text())
    (folder / "gunicorn.conf.py").write_text(CONF.path.read_text())
    with harness.serving("metrics/serve_single.sh", log_dir=tmp_path, cwd=folder,
                         ready_path=None, expect_clean=False) as server:
        wait_for_two_workers(server)
        rc = server.stop(expect_clean=False)
    assert rc != 0
    assert "in child_exit" in server.log() and "TypeError" in server.log()


# --------------------------------------------------------------------------- StatsD


class StatsdListener:
    """A UDP socket on 127.0.0.1 that keeps every datagram a server sends it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((harness.HOST, port))
        self.sock.setblocking(False)
        self.received: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.received.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return self.received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def statsd_ports() -> dict[int, int]:
    return harness.port_map(STATSD_PORT)


@pytest.fixture
def listener(statsd_ports: dict[int, int]):
    udp = StatsdListener(statsd_ports[STATSD_PORT])
    yield udp
    udp.close()


#: statsd.sh section -> does Gunicorn send a timer and counters for each request?
PER_REQUEST = {"asgi": True, "asgi-no-access-log": False, "uvicorn-worker": False}
REQUESTS = 4


@pytest.mark.parametrize("section", PER_REQUEST)
def test_statsd_request_metrics_by_worker_class(
    section: str, statsd_ports: dict[int, int], listener: StatsdListener, tmp_path: Path
) -> None:
    """Every worker class sends the master's gunicorn.workers gauge. Request metrics
    (gunicorn.requests, gunicorn.request.status.200, gunicorn.request.duration) come only from
    the asgi worker, and only when its access log is on; the Uvicorn worker sends none."""
    per_request = PER_REQUEST[section]
    with harness.serving(f"{STATSD}:{section}", log_dir=tmp_path,
                         ports=statsd_ports, public_port=8000, ready_path=None) as server:
        wait_for_two_workers(server)
        for _ in range(REQUESTS):
            get_pid(server)
        harness.wait_until(lambda: "gunicorn.workers:2|g" in listener.drain(),
                           what="the gunicorn.workers gauge", server=server,
                           describe=lambda: repr(listener.received[-5:]))
        server.stop()  # a graceful stop: every request's metrics have been sent
    sent = Counter(re.sub(r"^(gunicorn\.request\.duration):[\d.]+\|ms$", r"\1", m)
                   for m in listener.drain())
    expected = REQUESTS if per_request else 0
    assert sent["gunicorn.requests:1|c|@1.0"] == expected, sent
    assert sent["gunicorn.request.status.200:1|c|@1.0"] == expected, sent
    assert sent["gunicorn.request.duration"] == expected, sent


def test_install_command_names_the_pinned_versions() -> None:
    """requirements.txt pins every package the page's commands need, at the suite's versions."""

    pins = dict(re.match(r"([\w-]+)(?:\[[\w,]+\])?==(\S+)", line).groups()
                for line in harness.snippet("metrics/requirements.txt").text.splitlines())
    assert pins == {name: harness.reader_env("metrics").version(name) for name in pins}
    assert "prometheus-client" in pins
    assert "requirements.txt" in harness.command_of(harness.snippet("metrics/install.sh"))
