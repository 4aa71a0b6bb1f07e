"""docs/setups.md: each recommended setup, run together as one deployment.

VM with systemd: there is no systemd as PID 1 here, so the unit is checked with
``systemd-analyze verify`` (which loads it in a test manager of its own), and what systemd would
do is done by the test, from the unit's own lines: its ``ExecStart`` runs under the harness in
its ``WorkingDirectory`` with its ``Environment`` and a ``NOTIFY_SOCKET`` (``Type=notify``), behind
nginx with the proxy page's site; the reload runs its ``ExecReload`` with ``$MAINPID``; the stop
sends ``KillSignal`` to the main process only (``KillMode=mixed``) and waits ``TimeoutStopSec``
before the SIGKILL. The one rewrite: the unit's ``/srv/fastapi`` becomes a test folder holding the
config file and an app, and its ``.venv`` the page's reader environment; the config file's
address gets the commands' documented rewrite (a free port). ``User=`` is not applied.

Docker and Kubernetes: the images are the docker page's, built once per run with Podman
(``tests/containers.py``); the manifests are the kubernetes page's.
"""

from __future__ import annotations

import configparser
import contextlib
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

import containers
import harness

UNIT = "setups/fastapi.service"
CONF = "setups/gunicorn.conf.py"
VERIFY = "setups/verify.sh"
SYSTEMCTL = "setups/systemctl.sh"
NGINX_SITE = "proxy/fastapi.conf"
#: The app the tests put in the unit's WorkingDirectory: the proxy page's, which has /slow.
APP = "proxy/main.py"
#: Where the unit expects the app, its config and its virtual environment on the VM.
SRV = "/srv/fastapi"
DOCKERFILE, DOCKER_RUN, DOCKER_BUILD = "docker/Dockerfile", "docker/run.sh", "docker/build.sh:image"
K8S_IMAGE, K8S_VALIDATE = "docker/Dockerfile.k8s", "kubernetes/validate.sh"
DEPLOYMENT, SERVICE = "kubernetes/deployment.yaml", "kubernetes/service.yaml"
#: Every Dockerfile of the docker page: the images are built once per run for all pages.
#: How long a worker may take to boot, or a request to reach the app, on a loaded machine.
BOOT = 120
ALL_DOCKERFILES = ["Dockerfile", "Dockerfile.uvicorn", "Dockerfile.asgi", "Dockerfile.k8s",
                   "Dockerfile.shell-form"]


# --------------------------------------------------------------------------- the VM's files


def unit() -> dict[str, str]:
    """The unit's [Service] settings (systemd's syntax is close enough to INI for these)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(harness.snippet(UNIT).text)
    return dict(parser["Service"])


def environment(service: dict[str, str]) -> dict[str, str]:
    """The unit's Environment= assignments."""
    return dict(word.split("=", 1) for word in shlex.split(service["Environment"]))


def gunicorn_settings() -> dict[str, object]:
    """The config file's settings, as Gunicorn reads them (it runs the file as Python)."""
    return {k: v for k, v in runpy.run_path(str(harness.snippet(CONF).path)).items()
            if not k.startswith("__")}


def installed(tmp: Path, ports: dict[int, int] | None = None) -> tuple[Path, dict[str, str]]:
    """The VM's /srv/fastapi as a test folder: the unit with its paths rewritten, the config
    file (its address rewritten to ``ports``), the app; and the unit's [Service] likewise."""
    srv = tmp / "setups"  # the reader environment's page, in error messages
    srv.mkdir()
    venv = harness.reader_env("setups").path
    text = harness.snippet(UNIT).text.replace(f"{SRV}/.venv", str(venv)).replace(SRV, str(srv))
    (srv / "fastapi.service").write_text(text)
    conf = harness.snippet(CONF).text
    (srv / "gunicorn.conf.py").write_text(harness.rewrite(conf, ports) if ports else conf)
    shutil.copy(harness.snippet(APP).path, srv / "main.py")
    service = {k: v.replace(f"{SRV}/.venv", str(venv)).replace(SRV, str(srv))
               for k, v in unit().items()}
    return srv, service


# --------------------------------------------------------------------------- the VM, checked


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` loads the unit without a word of complaint; the same unit with
    a misspelt key is reported, so silence means something."""
    harness.ensure_debian_packages("systemd-analyze", ["systemd"])
    srv, _ = installed(tmp_path)
    assert harness.run(VERIFY, cwd=srv, log_dir=tmp_path).output.strip() == ""
    unit_file = srv / "fastapi.service"
    unit_file.write_text(unit_file.read_text().replace("TimeoutStopSec=", "TimeoutStopSecs="))
    assert "Unknown key 'TimeoutStopSecs'" in harness.run(VERIFY, cwd=srv, log_dir=tmp_path).output


def test_unit_config_and_nginx_agree() -> None:
    """The stop waits longer than the graceful timeout and reaches the master only; the reload
    is a HUP to the master; Gunicorn binds the address nginx's upstream names, on loopback;
    its heartbeat fires before nginx's read timeout; systemctl names this unit."""
    service, settings = unit(), gunicorn_settings()
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["TimeoutStopSec"]) > settings["graceful_timeout"]
    assert (service["KillMode"], service["KillSignal"]) == ("mixed", "SIGTERM")
    assert shlex.split(service["ExecReload"]) == ["/bin/kill", "-s", "HUP", "$MAINPID"]
    assert shlex.split(service["ExecStart"]) == [f"{SRV}/.venv/bin/gunicorn", "main:app"]
    assert service["WorkingDirectory"] == SRV  # where Gunicorn finds gunicorn.conf.py
    site = harness.snippet(NGINX_SITE).text
    upstream = re.search(r"upstream app_server \{\s*server (\S+)", site)[1]
    assert settings["bind"] == upstream == "127.0.0.1:8000"
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", site)[1])
    assert settings["timeout"] < read_timeout
    assert settings["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert "workers" not in settings and "WEB_CONCURRENCY" in environment(service)
    name = Path(UNIT).name
    commands = harness.snippet(SYSTEMCTL).text
    assert f"cp {name} /etc/systemd/system/" in commands
    assert {m for m in re.findall(r"systemctl (?:enable --now|reload|stop) (\S+)", commands)} == {
        name.removesuffix(".service")}


@dataclass
class OnTheVm:
    server: harness.Server
    nginx: harness.Nginx
    service: dict[str, str]
    notified: list[str]


@contextlib.contextmanager
def on_the_vm(tmp_path: Path) -> Iterator[OnTheVm]:
    """The unit's ExecStart, run as systemd would run it, with nginx in front."""
    ports = harness.port_map()
    srv, service = installed(tmp_path, ports)
    start = harness.variant(UNIT, service["ExecStart"])  # the unit's ExecStart line, as run
    notify_dir = Path(tempfile.mkdtemp(prefix="hb-notify-", dir="/tmp"))  # a short socket path
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_dir / "notify"))
    notify.settimeout(0.1)
    notified: list[str] = []
    try:
        env = {**environment(service), "NOTIFY_SOCKET": str(notify_dir / "notify")}
        with harness.serving(start, log_dir=tmp_path, cwd=Path(service["WorkingDirectory"]),
                             env=env, ports=ports, public_port=8000, ready_timeout=90,
                             requirements=harness.page_requirements("setups")) as server:
            with harness.nginx([NGINX_SITE], log_dir=tmp_path, upstream=server.ports) as nginx:
                with contextlib.suppress(TimeoutError):
                    while True:
                        notified.append(notify.recv(4096).decode())
                yield OnTheVm(server, nginx, service, notified)
    finally:
        notify.close()
        shutil.rmtree(notify_dir, ignore_errors=True)


def through_nginx(vm: OnTheVm, path: str = "/") -> int | str:
    """The status nginx answers over HTTPS, or what went wrong."""
    try:
        with vm.nginx.client() as client:
            return client.get(path).status_code
    except Exception as exc:  # noqa: BLE001 - the outcome is what the test compares
        return type(exc).__name__


#: Another loopback address than nginx's, so the client's address differs from the proxy's.
CLIENT_ADDRESS = "127.0.0.2"


def test_execstart_serves_behind_nginx(tmp_path: Path) -> None:
    """Started as the unit says, Gunicorn tells systemd it is ready (Type=notify), runs the
    unit's WEB_CONCURRENCY workers, listens on 127.0.0.1 only, and answers through nginx:
    the app sees the client's address and https."""
    with on_the_vm(tmp_path) as vm:
        workers = vm.server.wait_for_workers(int(environment(vm.service)["WEB_CONCURRENCY"]),
                                             timeout=BOOT)
        assert any(m.startswith("READY=1") for m in vm.notified), vm.notified
        listening = {c.laddr for c in vm.server.main_process().net_connections(kind="tcp")
                     if c.status == "LISTEN"}
        assert listening == {(harness.HOST, vm.server.port)}, listening
        # The client comes from 127.0.0.2, nginx from 127.0.0.1: the app can only see
        # 127.0.0.2 through nginx's X-Forwarded-For, which Gunicorn trusts from 127.0.0.1.
        tls = vm.nginx.tls_context()
        from_elsewhere = httpx.HTTPTransport(local_address=CLIENT_ADDRESS, verify=tls)
        with vm.nginx.client(transport=from_elsewhere) as client:
            answer = client.get("/").json()
        assert (answer["client"], answer["scheme"]) == (CLIENT_ADDRESS, "https"), answer
        assert answer["url"].startswith("https://"), answer
        assert len(workers) == 2


def test_reload_replaces_every_worker_and_finishes_requests(tmp_path: Path) -> None:
    """`systemctl reload` runs ExecReload: a HUP to $MAINPID. Every worker is replaced, a
    request in flight on an old worker is answered, and nginx keeps answering."""
    with on_the_vm(tmp_path) as vm:
        before = {p.pid for p in vm.server.wait_for_workers(2, timeout=BOOT)}
        in_flight, box = harness.in_background(through_nginx, vm, "/slow/3")
        vm.server.wait_for_log(r"slow request started", timeout=BOOT)
        subprocess.run(["bash", "-c", vm.service["ExecReload"]], check=True, timeout=30,
                       env={"MAINPID": str(vm.server.main_process().pid), "PATH": "/usr/bin:/bin"})
        def replaced() -> bool:
            now = {p.pid for p in vm.server.workers()}
            return len(now) == 2 and now.isdisjoint(before) and now <= vm.server.ready_worker_pids()

        harness.wait_until(replaced, what="every worker is replaced by a ready one", timeout=BOOT,
                           server=vm.server)
        in_flight.join(60)
        assert box.get("result") == 200, "the old worker finished the request in flight"
        assert through_nginx(vm) == 200
        assert vm.server.main_process().pid == vm.server.proc.pid, "the same master: MAINPID holds"


def test_stop_ends_gracefully_before_timeout_stop_sec(tmp_path: Path) -> None:
    """`systemctl stop`: SIGTERM to the master only (KillMode=mixed). A short request in flight
    is answered; one longer than graceful_timeout is cut when it runs out; the master exits 0
    on its own before TimeoutStopSec, so systemd never needs its SIGKILL."""
    settings = gunicorn_settings()
    with on_the_vm(tmp_path) as vm:
        vm.server.wait_for_workers(2, timeout=BOOT)
        stop_after = int(vm.service["TimeoutStopSec"])
        longer = (settings["graceful_timeout"] + stop_after) / 2  # cut by Gunicorn, not systemd
        short, s_box = harness.in_background(through_nginx, vm, "/slow/1")
        long, l_box = harness.in_background(through_nginx, vm, f"/slow/{longer}")
        vm.server.wait_for_log(r"(?s)slow request started.*slow request started", timeout=BOOT)
        signum = signal.Signals[vm.service["KillSignal"]]
        assert vm.server.stop(timeout=stop_after, sig=signum) == 0  # else: killed, and it fails
        short.join(30)
        long.join(30)
        assert s_box.get("result") == 200
        assert l_box.get("result") == 502, "nginx: the app server closed the connection"


# --------------------------------------------------------------------------- Docker


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, containers.Build]:
    """The docker page's images, built once per test run (shared with its tests)."""
    return containers.shared_builds(tmp_path_factory, harness.snippet(DOCKERFILE).folder,
                                    ALL_DOCKERFILES)


@pytest.mark.timeout(1200)
def test_docker_setup_runs_and_stops_gracefully(images) -> None:
    """The image that build.sh tags, run with run.sh's options: its WEB_CONCURRENCY workers
    start, and `docker stop` with --stop-timeout, which outlasts the CMD's --graceful-timeout:
    the server handles SIGTERM, every worker's lifespan shutdown runs, and it exits 0. (The
    health check is tests/test_docker.py's: under heavy load its 5 s timeout can run out.)"""
    words = shlex.split(harness.command_of(harness.snippet(DOCKER_RUN)))
    build = shlex.split(harness.command_of(harness.snippet(DOCKER_BUILD)))
    assert build == ["docker", "build", "-t", words[-1], "."], build  # Dockerfile, in the context
    assert words[:3] == ["docker", "run", "--rm"], words
    opts = dict(zip(words[3:-1:2], words[4:-1:2], strict=True))
    image = images[Path(DOCKERFILE).name]
    cmd = image.config["Cmd"]
    graceful = int(cmd[cmd.index("--graceful-timeout") + 1])
    stop_timeout = int(opts["--stop-timeout"])
    assert stop_timeout > graceful
    (exposed,) = image.config["ExposedPorts"]
    assert opts["-p"] == f"8000:{exposed.split('/')[0]}"
    key, _, workers = opts["-e"].partition("=")
    assert key == "WEB_CONCURRENCY"
    with containers.running(image.tag, f"--env={opts['-e']}", "--stop-timeout",
                            str(stop_timeout)) as c:
        assert c.get("/").status_code == 200
        harness.wait_until(lambda: c.logs().count("Application startup complete") == int(workers),
                           what=f"{workers} workers have started", timeout=180,
                           describe=lambda: c.logs()[-800:])
        assert c.stop(timeout=stop_timeout) == 0
        log = c.logs()
        assert "Handling signal: term" in log and "Shutting down: Master" in log, log[-2000:]
        assert log.count("Application shutdown complete") == int(workers), log[-2000:]


# --------------------------------------------------------------------------- Kubernetes


def manifest(ref: str) -> dict:
    return yaml.safe_load(harness.snippet(ref).text)


@pytest.mark.timeout(1200)
def test_kubernetes_setup_validates_and_its_probes_answer(images, tmp_path: Path) -> None:
    """The kubernetes page's validate command passes for the manifests; the image of
    Dockerfile.k8s runs its CMD; every probe path of the Deployment answers 200 on the named
    port (and an unknown path does not); the Service targets that port; the grace period
    outlasts preStop plus the CMD's graceful timeout, and SIGTERM ends the server within it."""
    files = [w for w in harness.command_of(harness.snippet(K8S_VALIDATE)).split()
             if w.endswith(".yaml")]
    assert {Path(DEPLOYMENT).name, Path(SERVICE).name} <= set(files)
    result = harness.run(K8S_VALIDATE, log_dir=tmp_path)
    assert result.output.count(" passed for resource ") == len(files), result.output
    pod = manifest(DEPLOYMENT)["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    (port,) = ctr["ports"]
    (service_port,) = manifest(SERVICE)["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    image = images[Path(K8S_IMAGE).name]
    cmd = image.config["Cmd"]
    graceful = int(cmd[cmd.index("--timeout-graceful-shutdown") + 1])
    pre_stop = ctr["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + graceful
    with containers.running(image.tag, port=port["containerPort"]) as c:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = ctr[kind]["httpGet"]
            assert probe["port"] == port["name"], kind
            assert c.get(probe["path"], port["containerPort"]).status_code == 200, kind
        assert c.get("/no-such-probe").status_code == 404
        assert c.stop(timeout=pod["terminationGracePeriodSeconds"]) == 0
        assert "Application shutdown complete" in c.logs()
