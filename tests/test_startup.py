"""docs/startup.md: start-up work runs in every worker; migrations race unless run once;
a slow start-up is not killed by the servers' timeouts; the manifests that run it on Kubernetes.

The migrations run against a real, throwaway PostgreSQL (tests/services.py). Timing claims
compare the configured values with each other or use lower bounds only (a sleep of N seconds
took at least N seconds); none assumes how fast this machine is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import kubernetes_validate
import psycopg
import pytest
import yaml

import harness
import services

APP = harness.snippet("startup/main.py")
MIGRATE = harness.snippet("startup/migrate.py")
harness.snippet("startup/in_lifespan.py")  # served by migrations.sh:in-lifespan*
harness.snippet("startup/locked_lifespan.py")  # served by migrations.sh:locked-lifespan
SLOW = harness.snippet("startup/slow.py")
harness.snippet("startup/slow_import.py")  # served by slow.sh:import*
LOAD_SECONDS = 6  # slow.py's LOAD_SECONDS
TIMEOUT = 2  # the --timeout / --timeout-worker-healthcheck in slow.sh

APPLIED = r"process (?P<pid>\d+) applied migrations: (?P<what>.*)"


@pytest.fixture
def database_url(log_dir: Path) -> Iterator[str]:
    with services.postgresql(log_dir) as url:
        yield url


def applied_lines(log: str) -> list[tuple[int, str]]:
    return [(int(m["pid"]), m["what"]) for m in re.finditer(APPLIED, log)]


def recorded_versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def count(url: str, query: str) -> int:
    """The number a ``SELECT count(*)`` query returns, right now, on a new connection."""
    with psycopg.connect(url) as conn:
        (found,) = conn.execute(query).fetchone()
    return found


def waiting_for_advisory_lock(url: str) -> int:
    """How many sessions wait, right now, for an advisory lock that another one holds."""
    return count(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")


# --------------------------------------------------------------------------- once per worker

SERVERS = {
    "uvicorn --workers": "startup/serve.sh:uvicorn",
    "gunicorn + uvicorn-worker": "startup/serve.sh:uvicorn-worker",
    "gunicorn asgi worker": "startup/serve.sh:asgi",
    "gunicorn --preload": "startup/serve.sh:preload",
}


@pytest.mark.parametrize("command", SERVERS.values(), ids=SERVERS.keys())
def test_lifespan_start_up_runs_once_per_worker(command: str, log_dir: Path) -> None:
    """Three workers, three runs of the lifespan start-up, one in each worker (--preload too)."""
    def runs() -> list[int]:
        return [int(pid) for pid in re.findall(r"start-up work ran in process (\d+)", server.log())]

    with harness.serving(command, log_dir=log_dir, cwd=APP.folder, ready_timeout=120) as server:
        workers = {w.pid for w in server.wait_for_workers(3, timeout=120)}
        harness.wait_until(lambda: workers <= set(runs()), server=server, timeout=120,
                           what="each worker has run its start-up")
        assert len(runs()) == len(set(runs())), "once per process, never twice"
        assert server.main_process().pid not in runs()
        # A worker replaced under load (Uvicorn's health check) would run it too: count only
        # those that still run, which must be exactly the three workers.
        assert len(workers & set(runs())) == 3


# --------------------------------------------------------------------------- the race


def start_lined_up(ref: str, url: str, log_dir: Path, sessions: int = 3) -> harness.Server:
    """Start the server with its workers lined up, as if they all started at the same instant:
    lock schema_migrations, start the server, wait until ``sessions`` database sessions wait to
    read the table, then release them together."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY)")
        conn.commit()
        conn.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        server = harness.start(ref, log_dir=log_dir, cwd=APP.folder, env={"DATABASE_URL": url})
        try:
            harness.wait_until(lambda: waiting_on_a_lock(url) >= sessions, timeout=120,
                               what=f"{sessions} workers wait to read schema_migrations",
                               server=server)
        except BaseException:
            server.stop(expect_clean=False)
            raise
        conn.commit()
    return server


def waiting_on_a_lock(url: str) -> int:
    """How many sessions wait, right now, on any lock (the workers lined up on the table)."""
    return count(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")


#: Each server with the migrations in its lifespan, and how it ends: with an error exit code
#: (Gunicorn: 3, or 1 when a second failed worker interrupts its halt) or 0, and its last words.
IN_LIFESPAN = {
    "gunicorn + uvicorn-worker": ("startup/migrations.sh:in-lifespan", True,
                                  "Worker failed to boot."),
    "gunicorn asgi worker": ("startup/migrations.sh:in-lifespan-asgi", True,
                             "Worker failed to boot."),
    "uvicorn --workers": ("startup/migrations.sh:in-lifespan-uvicorn", False,
                          "failed to start, stopping the parent process."),
}
RACE_LOST = "psycopg.errors.UniqueViolation: duplicate key value"


@pytest.mark.parametrize(("command", "error_exit", "last_words"), IN_LIFESPAN.values(),
                         ids=IN_LIFESPAN.keys())
def test_migrations_in_every_worker_race_and_stop_the_server(
    command: str, error_exit: bool, last_words: str, database_url: str, log_dir: Path
) -> None:
    """Three workers run the migrations at once: all find migration 1 pending and create its
    table; the ones that lose the race on PostgreSQL's catalog fail their start-up, and the
    server treats a worker that fails to start as fatal: the whole server exits."""
    server = start_lined_up(command, database_url, log_dir)
    try:
        harness.wait_until(lambda: server.proc.poll() is not None, what="the server exits",
                           timeout=120)
        log = server.log()
        assert (server.proc.returncode != 0) == error_exit, log[-2000:]
        assert last_words in log
        assert log.count(RACE_LOST) >= 1, log[-2000:]
        # Its workers go with it (a worker still exiting may hold the socket for a moment).
        harness.wait_until(lambda: not server.processes(), what="every worker has exited",
                           timeout=30, describe=lambda: str(server.processes()))
        with pytest.raises(httpx.ConnectError):
            server.get("/")
    finally:
        server.stop(expect_clean=False)


# --------------------------------------------------------------------------- run them once


def test_advisory_lock_lets_one_worker_migrate_while_the_others_wait(
    database_url: str, log_dir: Path
) -> None:
    """Three workers start together with the migrations behind the advisory lock: one applies
    them while the two others wait for the lock, then find nothing pending; all three serve."""
    with harness.serving("startup/migrations.sh:locked-lifespan", log_dir=log_dir, cwd=APP.folder,
                         env={"DATABASE_URL": database_url}, ready_path=None) as server:
        harness.wait_until(lambda: waiting_for_advisory_lock(database_url) == 2,
                           what="two workers wait for the advisory lock", timeout=120,
                           server=server)
        workers = server.wait_for_workers(3, timeout=120)
        lines = applied_lines(server.log())
        # One applied both; the two that had waited for the lock found nothing pending. (The
        # order of the log lines proves nothing: the migrating worker prints its line after it
        # has released the lock, and a waiter may print first; seen once under load.)
        assert sorted(what for _, what in lines) == ["[1, 2]", "[]", "[]"]
        assert {pid for pid, _ in lines} == {w.pid for w in workers}
        assert recorded_versions(database_url) == [1, 2]
        assert RACE_LOST not in server.log()


def test_entrypoint_migrates_once_across_replicas_then_execs_the_server(
    database_url: str, log_dir: Path
) -> None:
    """Two replicas start at once, each through the entrypoint: one applies the migrations, the
    other waits and finds them done; then each entrypoint is replaced by Gunicorn (exec), whose
    two workers each run the lifespan start-up, and which stops cleanly on SIGTERM."""
    env = {"DATABASE_URL": database_url}
    replicas = [harness.start("startup/replica.sh", log_dir=log_dir, env=env) for _ in range(2)]
    try:
        for replica in replicas:
            replica.wait_ready("/", timeout=120)
            replica.wait_for_workers(2, timeout=120)
            leader = harness.psutil.Process(replica.proc.pid)
            assert "gunicorn" in " ".join(leader.cmdline()), "the shell was replaced by exec"
        outcomes = sorted(re.search(APPLIED, r.log())["what"] for r in replicas)
        assert outcomes == ["[1, 2]", "none, already up to date"]
        for replica in replicas:  # 2 replicas x 2 workers: the lifespan ran 4 times in all
            ran = re.findall(r"start-up work ran in process (\d+)", replica.log())
            assert sorted(map(int, ran)) == sorted(w.pid for w in replica.workers())
        assert recorded_versions(database_url) == [1, 2]
        for replica in replicas:
            assert replica.stop() == 0
    finally:
        for replica in replicas:
            replica.stop(expect_clean=False)


def advisory_lock_held(url: str) -> bool:
    """True if some session holds migrate.py's advisory lock right now."""
    return count(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") > 0


def test_a_killed_lock_holder_releases_the_advisory_lock(database_url: str, log_dir: Path) -> None:
    """pg_advisory_lock is a session lock: migrate.py killed with SIGKILL while it holds the lock
    leaves no lock behind once PostgreSQL sees its connection gone (not before: a session that
    waits inside the database keeps it until its wait ends), and the next run takes the lock
    and applies the migrations. The test holds a lock on schema_migrations so that the
    killed run is surely still inside its lock, whatever the machine's speed."""
    entry = harness.command_of(harness.snippet("startup/entrypoint.sh")).splitlines()
    migrate_line = next(line for line in entry if "migrate.py" in line)
    command = harness.variant("startup/entrypoint.sh", f"exec {migrate_line}")
    env = {"DATABASE_URL": database_url}
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY)")
        conn.commit()
        conn.execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        holder = harness.start(command, log_dir=log_dir, cwd=MIGRATE.folder, env=env)
        try:
            harness.wait_until(
                lambda: advisory_lock_held(database_url) and waiting_on_a_lock(database_url),
                timeout=60, server=holder,
                what="migrate.py holds the advisory lock and waits to read schema_migrations")
            holder.main_process().kill()  # SIGKILL: no unlock, no clean close
        finally:
            holder.stop(expect_clean=False)
        assert advisory_lock_held(database_url), "a session waiting in the database keeps it"
        conn.commit()  # its session goes on, finds the client gone, and ends
    harness.wait_until(lambda: not advisory_lock_held(database_url), timeout=60,
                       what="PostgreSQL releases the dead session's advisory lock")
    result = harness.run(command, cwd=MIGRATE.folder, env=env, timeout=60, log_dir=log_dir)
    assert "applied migrations: [1, 2]" in result.output, result.output
    assert recorded_versions(database_url) == [1, 2]


def test_entrypoint_does_not_start_the_server_when_migrating_fails(log_dir: Path) -> None:
    """No database at DATABASE_URL: migrate.py fails, so the entrypoint exits with its error
    and the server never starts."""
    nowhere = f"postgresql://app@{harness.HOST}:{harness.free_port()}/app"
    result = harness.run("startup/replica.sh", env={"DATABASE_URL": nowhere}, check=False,
                         timeout=60, log_dir=log_dir)
    assert result.returncode != 0
    assert "psycopg.OperationalError" in result.output
    assert "Starting gunicorn" not in result.output


# --------------------------------------------------------------------------- slow starts

SLOW_SERVERS = {
    "gunicorn + uvicorn-worker": "startup/slow.sh:uvicorn-worker",
    "gunicorn asgi worker": "startup/slow.sh:asgi",
    "uvicorn --workers": "startup/slow.sh:uvicorn",
    "gunicorn, load at import": "startup/slow.sh:import",
}
LOADING = r"loading the model in process (\d+)"
LOADED = r"model loaded in process (\d+)"


@pytest.mark.parametrize("command", SLOW_SERVERS.values(), ids=SLOW_SERVERS.keys())
def test_a_start_up_longer_than_the_timeout_is_not_killed(command: str, log_dir: Path) -> None:
    """A 6 s model load in each worker, with a 2 s --timeout (or health-check timeout): no
    worker is killed while it loads; the workers that began loading are the ones that serve."""
    started = time.monotonic()
    with harness.serving(command, log_dir=log_dir, cwd=SLOW.folder, ready_timeout=120) as server:
        workers = server.wait_for_workers(2, timeout=120)
        harness.wait_until(lambda: len(re.findall(LOADED, server.log())) >= 2, timeout=120,
                           what="both workers have loaded the model", server=server)
        assert time.monotonic() - started >= LOAD_SECONDS > 2 * TIMEOUT
        log = server.log()
        loading = sorted(map(int, re.findall(LOADING, log)))
        assert loading == sorted(map(int, re.findall(LOADED, log)))
        assert loading == sorted(w.pid for w in workers), "no worker was replaced while loading"
        assert "WORKER TIMEOUT" not in log and "not ready in time" not in log


def test_preload_loads_an_import_time_model_once_in_the_master(log_dir: Path) -> None:
    """With --preload, the model loaded at import is loaded once, by the master, before the
    workers are forked; the workers serve it without loading it again."""
    with harness.serving("startup/slow.sh:import-preload", log_dir=log_dir, cwd=SLOW.folder,
                         ready_timeout=120) as server:
        workers = server.wait_for_workers(2, timeout=120)
        log = server.log()
        assert list(map(int, re.findall(LOADED, log))) == [server.main_process().pid]
        answer = server.get("/").json()
        assert answer["model"] == "demo" and answer["pid"] in {w.pid for w in workers}


# --------------------------------------------------------------------------- Kubernetes


MANIFESTS = {"job.yaml": "startup/job.yaml", "deployment.yaml": "startup/deployment.yaml"}


def manifest(name: str) -> dict:
    return yaml.safe_load(harness.snippet(MANIFESTS[name]).text)


def app_container() -> dict:
    (only,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return only


def probe_budget(probe: dict) -> int:
    """Seconds a probe tolerates failing before it acts (Kubernetes' defaults filled in)."""
    return probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


def test_validate_command_checks_both_manifests(log_dir: Path) -> None:
    result = harness.run("startup/validate.sh", log_dir=log_dir)
    assert result.output.count(" passed for resource ") == 2, result.output
    for name in MANIFESTS:
        kubernetes_validate.validate(manifest(name), kubernetes_validate.latest_version(),
                                     strict=True)


def test_job_and_init_container_run_the_entrypoints_migration() -> None:
    """The Job and the init container run the command the entrypoint runs, from the app's own
    image, with DATABASE_URL, the variable migrate.py reads; the Job never restarts in place."""
    entry = harness.command_of(harness.snippet("startup/entrypoint.sh")).splitlines()
    migrate_line = next(line for line in entry if "migrate.py" in line)
    job = manifest("job.yaml")["spec"]["template"]["spec"]
    (init,) = manifest("deployment.yaml")["spec"]["template"]["spec"]["initContainers"]
    (job_container,) = job["containers"]
    assert job["restartPolicy"] == "Never"
    for container in (job_container, init):
        assert " ".join(container["command"]) == migrate_line
        assert container["image"] == app_container()["image"]
        assert [e["name"] for e in container["env"]] == ["DATABASE_URL"]
    assert 'os.environ["DATABASE_URL"]' in MIGRATE.text


def test_startup_probe_outlasts_the_load_and_the_probes_fail_until_it_ends(log_dir: Path) -> None:
    """The startup probe tolerates far more than the load takes, and more than the liveness
    probe would. On the container's real command, both probe paths fail (no answer) while the
    model loads and answer 200 once it is loaded: without the startup probe, a liveness probe
    with a shorter budget than the load would restart the pod before it ever served."""
    ctr = app_container()
    startup, liveness, readiness = (ctr[k] for k in ("startupProbe", "livenessProbe",
                                                     "readinessProbe"))
    assert probe_budget(startup) >= 10 * LOAD_SECONDS
    assert probe_budget(startup) > probe_budget(liveness)
    port = {p["name"]: p["containerPort"] for p in ctr["ports"]}[startup["httpGet"]["port"]]
    assert f"--port {port}" in " ".join(ctr["command"])

    snip = harness.snippet("startup/deployment.yaml")
    command = harness.variant(snip, " ".join(ctr["command"]))  # as if a page showed it
    server = harness.start(command, log_dir=log_dir, cwd=SLOW.folder)
    try:
        paths = [startup["httpGet"]["path"], readiness["httpGet"]["path"]]
        failed_while_loading, passed_before_loaded = 0, 0

        def probe() -> bool:
            nonlocal failed_while_loading, passed_before_loaded
            loaded_before = bool(re.search(LOADED, server.log()))
            try:
                with harness.http_client(timeout=1) as client:
                    ok = all(client.get(server.url(p)).status_code == 200 for p in paths)
            except httpx.HTTPError:
                ok = False
            loaded_after = bool(re.search(LOADED, server.log()))
            failed_while_loading += not ok and not loaded_before
            passed_before_loaded += ok and not loaded_after
            return ok

        harness.wait_until(probe, what="the probe paths answer 200", timeout=120,
                           interval=0.5, server=server)
        assert failed_while_loading >= 1, "the probes failed while the model loaded"
        assert passed_before_loaded == 0, "no probe passed before the model was loaded"
    finally:
        server.stop(expect_clean=False)


# --------------------------------------------------------------------------- install


def test_requirements_pin_the_verified_versions() -> None:
    """requirements.txt pins exactly the versions the whole suite runs with (uv.lock)."""
    pins = harness.check_reader_env(
        "startup", shows=["startup/requirements.txt", "kubernetes/requirements.txt"])
    assert set(pins) == {"fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "psycopg",
                         "kubernetes-validate"}


def test_install_command_installs_the_requirements(log_dir: Path) -> None:
    """The quick start's install command, run in this page's folder, installs its requirements
    (psycopg included) into a fresh virtual environment, from the package index."""
    installed = harness.install_as_the_reader("quickstart/install.sh", APP.folder, log_dir)
    reader = harness.reader_env("startup")
    for name in ("fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "psycopg"):
        assert installed.get(name) == reader.version(name), (name, installed)
