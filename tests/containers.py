"""Real image builds and containers for the Docker and Kubernetes pages, with Podman.

What a reader does with ``docker build`` / ``docker run``, the tests do with Podman (rootful
when the tests run as root, rootless otherwise), which reads the same Dockerfiles:

* :func:`engine` installs Podman and Buildah from Debian when they are missing and checks that
  containers can run here; when they cannot, it fails with the missing prerequisite named.
  Settings go in a ``containers.conf`` of our own, passed with ``CONTAINERS_CONF``: the ``runc``
  runtime (``crun`` 1.8 fails on hybrid cgroups) and explicit ulimits. ``/etc/containers`` is
  not touched.
* No registry is reachable, so :func:`ensure_base_images` makes local stand-ins with the exact
  names the Dockerfiles use, once (they stay cached in the image store between runs):
  ``python:3.12-slim-bookworm`` is a Debian bookworm rootfs from ``mmdebstrap`` (minbase) with
  the CPython 3.12 that runs these tests copied to ``/usr/local`` (without its site-packages),
  and ``ghcr.io/astral-sh/uv:<version>`` holds ``/uv`` and ``/uvx`` from that uv release's
  wheel on PyPI. Every build uses ``--pull=never``.
* ``uv sync`` in a build reaches PyPI through this machine's TLS-intercepting egress, so
  :func:`build` mounts the host's CA bundle over the image's and a folder over ``/root`` that
  holds a ``uv.toml`` with ``system-certs = true`` (and an empty uv cache folder for the
  cache mount). Mounts leave nothing in any layer.
* Every image and container the tests create carries the label ``handbook.run=<run id>``;
  :func:`remove_run` deletes them all at the end of the session (``tests/conftest.py``).
* Every Podman command has a bounded timeout and fails with the command, exit code and output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

import harness

LABEL = "handbook.run"
PYTHON_IMAGE = "docker.io/library/python:3.12-slim-bookworm"
UV_IMAGE = "ghcr.io/astral-sh/uv"
#: Debian packages the containers need on the machine that runs the tests.
ENGINE_PACKAGES = ["podman", "buildah", "runc", "fuse-overlayfs", "uidmap", "slirp4netns",
                   "mmdebstrap", "debian-archive-keyring"]
#: What the official slim image installs besides minbase, and the libraries its Python links.
BASE_PACKAGES = ["ca-certificates", "netbase", "tzdata", "libssl3", "libffi8", "libsqlite3-0",
                 "libbz2-1.0", "liblzma5", "libreadline8", "libncursesw6", "libexpat1",
                 "libtirpc3", "zlib1g", "libuuid1", "libgdbm6"]
#: Paths of the interpreter installation that the stand-in image leaves out: its
#: site-packages (pip, uv and whatever the machine installed) and, as the official image's
#: Dockerfile removes them, test folders, compiled bytecode and the static libpython.
PYTHON_EXCLUDES = ["./lib/python3.12/site-packages/*", "./bin/uv", "./bin/uvx", "./bin/pip*",
                   "test", "tests", "idle_test", "__pycache__", "*.pyc", "*.pyo",
                   "libpython*.a"]
#: Bump when the recipe of the stand-in images changes, so cached stand-ins are remade.
STAND_IN_RECIPE = "3"
#: What debian:bookworm-slim leaves out of every package (documentation, manuals, locales).
SLIM_DPKG_OPTIONS = ["path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
                     "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
                     "path-exclude=/usr/share/locale/*", "path-exclude=/usr/share/groff/*",
                     "path-exclude=/usr/share/lintian/*", "path-exclude=/usr/share/linda/*"]
WORK = Path(tempfile.gettempdir()) / "handbook-containers"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINERS_CONF = """\
# Written by tests/containers.py; passed to Podman with CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""


class EngineError(harness.HarnessError):
    pass


def run_id() -> str:
    return os.environ.get(harness.RUN_ID_VAR) or "no-run-id"


# --------------------------------------------------------------------------- the engine


def _env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(WORK / "containers.conf")}


def podman(*args: str, timeout: float = 120, check: bool = True,
           merge: bool = False) -> subprocess.CompletedProcess:
    """Run ``podman args``; on failure (or timeout) raise with the command, exit code and output.
    With ``merge``, stderr goes into stdout in order (a build's step output and RUN output)."""
    cmd = ["podman", *args]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout, env=_env(),
                           stderr=subprocess.STDOUT if merge else subprocess.PIPE)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        raise EngineError(f"`{' '.join(cmd)}` did not finish within {timeout}s\n"
                          + _tail(out)) from None
    if check and r.returncode != 0:
        raise EngineError(f"`{' '.join(cmd)}` exited {r.returncode}\n"
                          + _tail(r.stdout + (r.stderr or "")))
    if merge:
        r.stderr = ""
    return r


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join("    " + ln for ln in text.splitlines()[-lines:])


def _missing_prerequisite() -> str | None:
    """What this machine lacks to run containers, in words; None when nothing is missing."""
    if not Path("/sys/fs/cgroup").is_dir() or not os.listdir("/sys/fs/cgroup"):
        return "no cgroup file system at /sys/fs/cgroup (containers need cgroups)"
    max_ns = Path("/proc/sys/user/max_user_namespaces")
    if os.geteuid() != 0:
        if max_ns.exists() and max_ns.read_text().strip() == "0":
            return "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)"
        apparmor = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        if apparmor.exists() and apparmor.read_text().strip() == "1":
            return ("AppArmor restricts unprivileged user namespaces (Ubuntu 24.04's default: "
                    "kernel.apparmor_restrict_unprivileged_userns=1), which mmdebstrap and "
                    "rootless Podman need; run the tests as root, or set it to 0")
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
        subuid = Path("/etc/subuid")
        lines = subuid.read_text().splitlines() if subuid.exists() else []
        if not any(ln.split(":")[0] in (user, str(os.geteuid())) for ln in lines):
            return f"no subordinate UIDs for {user} in /etc/subuid (rootless Podman needs them)"
    return None


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    WORK.mkdir(exist_ok=True)
    with open(WORK / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def engine() -> None:
    """Make sure Podman, Buildah and mmdebstrap are installed and containers can run here."""
    harness.ensure_debian_packages("podman", ENGINE_PACKAGES)
    for binary in ("buildah", "mmdebstrap", "runc", "fuse-overlayfs"):
        harness.ensure_debian_packages(binary, ENGINE_PACKAGES)
    missing = _missing_prerequisite()
    if missing:
        raise EngineError(f"containers cannot run on this machine: {missing}")
    with _locked("conf"):
        conf = WORK / "containers.conf"
        if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
            conf.write_text(CONTAINERS_CONF)
    info = podman("info", "--format", "json", check=False, timeout=60)
    if info.returncode != 0:
        raise EngineError("containers cannot run on this machine: `podman info` exited "
                          f"{info.returncode}\n" + _tail(info.stdout + info.stderr))


# --------------------------------------------------------------------------- stand-in images


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def uv_version(dockerfile: Path) -> str:
    m = re.search(r"--from=ghcr\.io/astral-sh/uv:(\d+\.\d+\.\d+)", dockerfile.read_text())
    if not m:
        raise EngineError(f"{dockerfile}: no COPY --from=ghcr.io/astral-sh/uv:<version>")
    return m[1]


def _python_stand_in_label() -> str:
    return f"python-{sys.version.split()[0]}-from-{sys.base_prefix}-recipe-{STAND_IN_RECIPE}"


def ensure_base_images(uv: str) -> None:
    """Make the stand-ins for python:3.12-slim-bookworm and ghcr.io/astral-sh/uv:<uv>, once."""
    with _locked("base-images"):
        if not _has_label(PYTHON_IMAGE, "handbook.stand-in", _python_stand_in_label()):
            _make_python_image()
        if not image_exists(f"{UV_IMAGE}:{uv}"):
            _make_uv_image(uv)
    probe = podman("run", "--rm", "--pull=never", "--network=none", PYTHON_IMAGE, "python3",
                   "-c", "import ssl, sqlite3, sys; print(sys.version_info[:2])", check=False,
                   timeout=120)
    if probe.returncode != 0 or probe.stdout.strip() != "(3, 12)":
        raise EngineError("containers cannot run on this machine: `podman run` of the stand-in "
                          f"{PYTHON_IMAGE} exited {probe.returncode}\n"
                          + _tail(probe.stdout + probe.stderr))


def _has_label(ref: str, key: str, value: str) -> bool:
    if not image_exists(ref):
        return False
    labels = json.loads(podman("image", "inspect", ref).stdout)[0].get("Labels") or {}
    return labels.get(key) == value


def _make_python_image() -> None:
    prefix = Path(sys.base_prefix)
    rootfs = WORK / "python-rootfs.tar"
    excludes = " ".join(f"--exclude='{e}'" for e in PYTHON_EXCLUDES)
    hook = (f'tar -C {prefix} {excludes} -c . | tar -C "$1/usr/local" -x'
            ' && mkdir -p "$1/usr/local/lib/python3.12/site-packages"'
            ' && chroot "$1" ldconfig')
    cmd = ["mmdebstrap", "--variant=minbase", "--mode=auto", "--format=tar",
           f"--include={','.join(BASE_PACKAGES)}", "--customize-hook=" + hook,
           "--aptopt=Acquire::Retries 3", *(f"--dpkgopt={o}" for o in SLIM_DPKG_OPTIONS),
           "bookworm", str(rootfs),
           "http://deb.debian.org/debian"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise EngineError(f"`{' '.join(cmd)}` exited {r.returncode}\n"
                          + _tail(r.stdout + r.stderr))
    changes = ["ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
               "ENV LANG=C.UTF-8", f"ENV PYTHON_VERSION={sys.version.split()[0]}",
               'CMD ["python3"]', f"LABEL handbook.stand-in={_python_stand_in_label()}"]
    if image_exists(PYTHON_IMAGE):  # an older stand-in: replaced, not left dangling
        podman("rmi", "-f", PYTHON_IMAGE, check=False)
    podman("import", *(f"--change={c}" for c in changes), str(rootfs), PYTHON_IMAGE,
           timeout=600)
    rootfs.unlink()


def _make_uv_image(version: str) -> None:
    wheels = WORK / f"uv-{version}"
    if not any(wheels.glob("uv-*.whl")):
        cmd = [str(Path(sys.base_prefix) / "bin/python3"), "-m", "pip", "download", "--quiet",
               "--no-deps",
               "--only-binary=:all:", f"uv=={version}", "-d", str(wheels)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise EngineError(f"`{' '.join(cmd)}` exited {r.returncode}\n"
                              + _tail(r.stdout + r.stderr))
    import zipfile

    (wheel,) = wheels.glob("uv-*.whl")
    layer = WORK / f"uv-{version}.tar"
    with zipfile.ZipFile(wheel) as z, tarfile.open(layer, "w") as tar:
        for name in ("uv", "uvx"):
            (member,) = [n for n in z.namelist() if n.endswith(f".data/scripts/{name}")]
            data = z.read(member)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            import io

            tar.addfile(info, io.BytesIO(data))
    podman("import", "--change=LABEL handbook.stand-in=uv-wheel-" + version,
           str(layer), f"{UV_IMAGE}:{version}", timeout=300)
    layer.unlink()


# --------------------------------------------------------------------------- builds


@dataclass
class Build:
    """One `podman build`: the image it made, and what it printed."""

    tag: str
    output: str

    def inspect(self) -> dict:
        return json.loads(podman("image", "inspect", self.tag).stdout)[0]

    @property
    def id(self) -> str:
        return self.inspect()["Id"]

    @property
    def config(self) -> dict:
        return self.inspect()["Config"]

    def history(self) -> list[dict]:
        """The image's layers, newest first: ``CreatedBy`` and ``size`` (bytes) of each."""
        return json.loads(podman("history", "--format", "json", "--no-trunc", self.tag).stdout)

    def size(self) -> int:
        return int(self.inspect()["Size"])

    def run(self, *argv: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`podman run --rm` a one-off command in this image (no network)."""
        return podman("run", "--rm", "--pull=never", "--network=none", "--label",
                      f"{LABEL}={run_id()}", *options, self.tag, *argv, timeout=120)


def build_mounts() -> list[str]:
    """Mounts for every RUN step: the host's CA bundle, and /root with a uv.toml that trusts it."""
    home = WORK / "build-home"
    with _locked("build-home"):
        (home / ".config/uv").mkdir(parents=True, exist_ok=True)
        (home / ".cache/uv").mkdir(parents=True, exist_ok=True)
        (home / ".config/uv/uv.toml").write_text("system-certs = true\n")
    return ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro", "-v", f"{home}:/root:ro"]


def build(dockerfile: Path, context: Path, tag: str, timeout: float = 600) -> Build:
    """`docker build -f dockerfile -t tag context`, as Podman runs it (see the module doc)."""
    args = ["build", "--pull=never", "--format", "docker", "--layers", "--label",
            f"{LABEL}={run_id()}", *build_mounts(), "-f", str(dockerfile), "-t", tag,
            str(context)]
    _record_images(tag)
    r = podman(*args, timeout=timeout, check=False, merge=True)
    output = r.stdout + r.stderr
    # The image of every step, the build stage's included: untagged, but made by this run.
    _record_images(*re.findall(r"^--> ([0-9a-f]{11,64})$", output, re.M))
    if r.returncode != 0:
        raise EngineError(f"`podman {' '.join(args)}` exited {r.returncode}\n" + _tail(output))
    return Build(tag, output)


def _record_images(*refs: str) -> None:
    """Note images this run made, so :func:`remove_run` deletes them, even untagged ones."""
    with _locked("records"), open(WORK / f"images-{run_id()}.txt", "a") as f:
        f.writelines(f"{ref}\n" for ref in refs)


def new_tag(name: str) -> str:
    """A tag for an image this run builds, unique to the run."""
    return f"localhost/handbook-{name.lower()}:{run_id()[:12]}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- files to mount


def tls_files(folder: Path, names: tuple[str, str] = ("key.pem", "cert.pem")) -> Path:
    """A fresh CA and a key and certificate for localhost and 127.0.0.1 (trustme), written to
    ``folder`` under ``names``; return the CA's certificate, for the client to verify with."""
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / names[0]))
    cert.cert_chain_pems[0].write_to_path(str(folder / names[1]))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return folder / "ca.pem"


def own(path: Path, uid: int, gid: int, mode: int) -> None:
    """Give ``path`` the owner, group and mode that a container sees when it is bind-mounted:
    ``chown`` as root (rootful Podman maps IDs 1:1), ``podman unshare chown`` otherwise (rootless
    Podman maps container IDs to the user's subordinate IDs)."""
    path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    else:
        podman("unshare", "chown", f"{uid}:{gid}", str(path))


# --------------------------------------------------------------------------- containers


@dataclass
class Container:
    name: str
    ports: dict[int, int]  # container port -> host port on 127.0.0.1

    def url(self, path: str = "/", port: int | None = None) -> str:
        port = port or next(iter(self.ports))
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def get(self, path: str = "/", port: int | None = None,
            verify: Path | None = None) -> httpx.Response:
        """GET over HTTP, or over HTTPS verified with the CA certificate ``verify``."""
        if verify is None:
            return harness.http_get(self.url(path, port), timeout=10)
        url = self.url(path, port).replace("http://", "https://", 1)
        return harness.http_get(url, timeout=10, verify=verify)

    def inspect(self) -> dict:
        return json.loads(podman("container", "inspect", self.name).stdout)[0]

    def running(self) -> bool:
        return bool(self.inspect()["State"]["Running"])

    def logs(self) -> str:
        r = podman("logs", self.name)
        return r.stdout + r.stderr

    def exec(self, *argv: str, check: bool = True, user: str | None = None,
             ) -> subprocess.CompletedProcess:
        return podman("exec", *(["--user", user] if user else []), self.name, *argv,
                      check=check, timeout=60)

    def processes(self) -> list[dict[str, str]]:
        """Every process in the container: pid (in the container), user, comm, args."""
        code = ("import os, json\nout = []\n"
                "for p in sorted(int(d) for d in os.listdir('/proc') if d.isdigit()):\n"
                "    if p == os.getpid():\n        continue\n"
                "    try:\n"
                "        st = os.stat(f'/proc/{p}')\n"
                "        comm = open(f'/proc/{p}/comm').read().strip()\n"
                "        args = open(f'/proc/{p}/cmdline').read().split(chr(0))\n"
                "        ppid = int(open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1])\n"
                "    except OSError:\n        continue\n"
                "    out.append({'pid': p, 'ppid': ppid, 'uid': st.st_uid, 'gid': st.st_gid,"
                " 'comm': comm, 'args': [a for a in args if a]})\n"
                "print(json.dumps(out))")
        return json.loads(self.exec("python", "-c", code).stdout)

    def wait_answering(self, path: str = "/healthz", timeout: float = 90,
                       verify: Path | None = None) -> None:
        """Wait until GET ``path`` answers 200 (over HTTPS verified with the CA certificate
        ``verify`` when given); fails at once, with the log, if the container exits."""
        def answers() -> bool:
            if not self.running():
                raise EngineError(f"container {self.name} exited while starting\n"
                                  + _tail(self.logs()))
            with contextlib.suppress(httpx.HTTPError):
                return self.get(path, verify=verify).status_code == 200
            return False

        scheme = "HTTPS" if verify else "HTTP"
        harness.wait_until(answers, what=f"{self.name} answers {path} over {scheme}",
                           timeout=timeout, interval=0.3, describe=lambda: _tail(self.logs(), 10))

    def healthcheck(self) -> subprocess.CompletedProcess:
        """`podman healthcheck run`: exit code 0 when healthy."""
        return podman("healthcheck", "run", self.name, check=False, timeout=60)

    def healthy(self) -> bool:
        """Healthy as Docker decides: one of ``--retries`` runs of the image's check in a row
        passes (the check itself, ``podman healthcheck run``, has the image's timeout)."""
        retries = (self.inspect()["Config"].get("Healthcheck") or {}).get("Retries") or 3
        return any(self.healthcheck().returncode == 0 for _ in range(retries))

    def wait_healthy(self, timeout: float = 120) -> None:
        """Wait until the image's check passes, as Docker reports "healthy" after the first pass
        (on a loaded machine the check's own 5 s timeout can run out while the server starts)."""
        last: list[str] = []

        def passes() -> bool:
            r = self.healthcheck()
            last[:] = [r.stdout + r.stderr]
            return r.returncode == 0

        harness.wait_until(passes, what=f"the health check of {self.name} passes",
                           timeout=timeout, interval=1, describe=lambda: "".join(last))

    def stop(self, timeout: int) -> int:
        """`podman stop -t timeout` (SIGTERM, then SIGKILL after timeout); the exit code."""
        podman("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        return int(self.inspect()["State"]["ExitCode"])


def check_serves_https_with_key(c: Container, *, path: str, ca: Path, key: str,
                                owner: tuple[int, int], mode: int, timeout: float = 120) -> None:
    """The running container answers HTTPS on ``path`` with a certificate that verifies against
    ``ca``, and the key file it reads (``key``, a path inside it) has this owner (uid, gid) and
    mode: a non-root server that could read its key. Fails at once if the container exits."""
    c.wait_answering(path, timeout=timeout, verify=ca)
    seen = c.exec("stat", "-c", "%u:%g %a", key).stdout.split()
    expected = [f"{owner[0]}:{owner[1]}", f"{mode:o}"]
    assert seen == expected, f"{key} in {c.name}: owner and mode {seen}, expected {expected}"


@contextlib.contextmanager
def running(image: str, *options: str, port: int = 8000, command: tuple[str, ...] = (),
            wait: str | None = "/healthz", wait_timeout: float = 90) -> Iterator[Container]:
    """`docker run -d -p 127.0.0.1:<free>:port image`, removed afterwards even on failure."""
    name = f"handbook-{run_id()[:8]}-{uuid.uuid4().hex[:8]}"
    host_port = harness.free_port()
    podman("run", "-d", "--pull=never", "--name", name, "--label", f"{LABEL}={run_id()}",
           "-p", f"127.0.0.1:{host_port}:{port}", *options, image, *command, timeout=120)
    container = Container(name, {port: host_port})
    try:
        if wait:
            container.wait_answering(wait, timeout=wait_timeout)
        yield container
    finally:
        podman("rm", "-f", "-t", "0", name, check=False, timeout=120)


# --------------------------------------------------------------------------- clean-up


def leftovers(run: str) -> list[str]:
    """Containers and images this run created that still exist."""
    if shutil.which("podman") is None or not (WORK / "containers.conf").exists():
        return []
    found = []
    ps = podman("ps", "-a", "--filter", f"label={LABEL}={run}", "--format", "{{.Names}}",
                check=False)
    found += [f"container {n}" for n in ps.stdout.split()]
    images = podman("images", "-a", "--filter", f"label={LABEL}={run}", "--format",
                    "{{.ID}} {{.Repository}}:{{.Tag}}", check=False)
    found += [f"image {line}" for line in images.stdout.splitlines() if line.strip()]
    return found


def remove_run(run: str) -> list[str]:
    """Remove every container and image of this run; return what could not be removed."""
    if shutil.which("podman") is None or not (WORK / "containers.conf").exists():
        return []
    podman("rm", "-f", "-t", "0", "--filter", f"label={LABEL}={run}", check=False, timeout=300)
    record = WORK / f"images-{run}.txt"
    recorded = record.read_text().split() if record.exists() else []
    labelled = podman("images", "-a", "-q", "--filter", f"label={LABEL}={run}",
                      check=False).stdout.split()
    for ref in reversed(list(dict.fromkeys(recorded + labelled))):  # newest first
        podman("rmi", "-f", ref, check=False, timeout=300)
    left = leftovers(run) + [f"image {ref}" for ref in recorded if image_exists(ref)]
    if not left:
        record.unlink(missing_ok=True)
    return left


# --------------------------------------------------------------------------- shared images


def shared_builds(tmp_path_factory, context: Path, dockerfiles: list[str]) -> dict[str, Build]:
    """Every Dockerfile built once per test run (``harness.once``); the first process builds,
    the others reuse. A failure (no container engine, a broken Dockerfile) is raised again in
    every process that asks, with its message, so each test names the same cause.
    """
    def build_all(_folder: Path) -> dict[str, Build]:
        engine()
        ensure_base_images(uv_version(context / dockerfiles[0]))
        return {name: build(context / name, context, new_tag(name.replace(".", "-")))
                for name in dockerfiles}

    try:
        return harness.once(tmp_path_factory, "images", build_all)
    except harness.HarnessError as exc:
        raise EngineError(str(exc)) from None
