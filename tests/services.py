"""Real components that some pages need beside the server: started on loopback, always stopped.

Each helper is a context manager: it installs what is missing (Debian packages, through
:func:`harness.ensure_debian_packages`), starts the component as a user-level process with its
data, socket and log in a temporary folder, waits (bounded) until it answers, yields how to
reach it, and stops it and removes its folder when the block ends, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import harness

PG_LIB = Path("/usr/lib/postgresql")


def postgres_bindir() -> Path:
    """The newest PostgreSQL server's ``bin`` folder, installing Debian's package if needed."""
    found = sorted(PG_LIB.glob("*/bin/postgres"))
    if not found:
        harness.ensure_debian_packages("pg_ctlcluster", ["postgresql"])
        found = sorted(PG_LIB.glob("*/bin/postgres"))
    assert found, "the Debian postgresql package installed no server under /usr/lib/postgresql"
    return found[-1].parent


@contextlib.contextmanager
def postgresql(log_dir: Path) -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 and a free port; yields its URL.

    Runs as the ``postgres`` user when the suite runs as root (PostgreSQL refuses root), with
    ``fsync`` off and trust authentication on loopback. Its log is ``log_dir/postgres.log``.
    """
    bindir = postgres_bindir()
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="handbook-pg-"))  # outside pytest's root-only tmp
    if as_root:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    port = harness.free_port()
    env = harness.base_env()
    proc = None
    try:
        subprocess.run(
            [*run_as, bindir / "initdb", "-D", folder / "data", "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120, env=env,
        )
        with (log_dir / "postgres.log").open("wb") as log:
            proc = subprocess.Popen(
                [*run_as, bindir / "postgres", "-D", folder / "data", "-k", folder,
                 "-h", harness.HOST, "-p", str(port), "-c", "fsync=off"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )
        url = f"postgresql://postgres@{harness.HOST}:{port}/postgres"
        harness.wait_until(
            lambda: subprocess.run([bindir / "pg_isready", "-d", url],
                                   capture_output=True).returncode == 0,
            what="PostgreSQL accepts connections", timeout=30, interval=0.2,
            describe=lambda: harness.tail(log_dir / "postgres.log", 10),
        )
        yield url
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)  # fast shutdown
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                harness.kill_group(proc.pid)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis(log_dir: Path) -> Iterator[str]:
    """A throwaway Redis server on 127.0.0.1 and a free port; yields its URL.

    Debian's ``redis-server``, run as the current user with no persistence (``--save ""
    --appendonly no``); its config, pid file and log are in a temporary folder, its log copied
    to ``log_dir/redis.log`` when it stops.
    """
    server = harness.ensure_debian_packages("redis-server", ["redis-server"])
    folder = Path(tempfile.mkdtemp(prefix="handbook-redis-"))
    port = harness.free_port()
    conf = folder / "redis.conf"
    conf.write_text(
        f"bind {harness.HOST}\nport {port}\ndir {folder}\npidfile {folder}/redis.pid\n"
        f"logfile {folder}/redis.log\ndaemonize no\nsave \"\"\nappendonly no\n"
    )
    proc = None
    try:
        proc = subprocess.Popen([server, str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=harness.base_env())

        def answers() -> bool:
            if proc.poll() is not None:
                raise harness.HarnessError(f"redis-server exited {proc.returncode}:\n"
                                           + harness.tail(folder / "redis.log", 20))
            with contextlib.suppress(OSError), harness.socket.create_connection(
                    (harness.HOST, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        harness.wait_until(answers, what=f"Redis answers PING on port {port}", timeout=30,
                           interval=0.1, describe=lambda: harness.tail(folder / "redis.log", 5))
        yield f"redis://{harness.HOST}:{port}/0"
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                harness.kill_group(proc.pid)
        with contextlib.suppress(OSError):
            shutil.copy(folder / "redis.log", log_dir / "redis.log")
        shutil.rmtree(folder, ignore_errors=True)
