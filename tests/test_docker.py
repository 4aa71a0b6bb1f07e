"""docs/docker.md: every Dockerfile is linted, parsed, built as far as this machine allows, and run.

There is no Docker engine here. What replaces it is a small, strict emulator (``build`` below):

* the build context is a copy of ``snippets/docker/`` filtered by its ``.dockerignore``;
* each stage is built in a fresh directory of its own, starting from a copy of this Debian
  machine's accounts; a stage identical to one already built in this test process (same
  instructions, same context) is reused, as Docker's build cache would;
* ``COPY`` copies from the context or from an earlier stage (a shebang naming the earlier
  stage's directory is rewritten to the new one: in a real image both are ``/``), and
  ``COPY --from`` the uv image
  provides the uv that runs the tests; ``RUN uv sync ...`` really runs (the cache mount maps
  to uv's cache on this machine); ``RUN groupadd/useradd`` really run, with ``--prefix`` on a
  copy of this Debian machine's ``/etc``; any other instruction or command fails the test;
* the base image ``python:3.12-slim-*`` is played by this machine's Python 3.12 (the image's
  ``/usr/local/bin``) and this Debian system (``/bin/sh`` and the rest);
* ``CMD`` and ``HEALTHCHECK`` run with the image's environment and nothing else (``env -i``),
  in its ``WORKDIR``, as its ``USER`` (when the tests run as root, through ``setpriv``; the one
  extra capability, reading any directory, is only there because this machine's Python lives
  under ``/root``), with the handbook's one rewrite (0.0.0.0 -> 127.0.0.1, public ports ->
  free ports) applied to the whole command, including the ``ENV`` values.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from dockerfile_parse import DockerfileParser

import harness

APP = harness.snippet("docker/main.py")
PYPROJECT = harness.snippet("docker/pyproject.toml")
LOCK = harness.snippet("docker/uv.lock")
DOCKERIGNORE = harness.snippet("docker/.dockerignore")
CONTEXT = APP.folder  # `docker build .` runs in the folder that holds the app
#: Every Dockerfile the page recommends, and how many worker processes its CMD starts.
DOCKERFILES = {
    "docker/Dockerfile": 2,  # Gunicorn + uvicorn-worker, WEB_CONCURRENCY=2
    "docker/Dockerfile.uvicorn": 2,  # uvicorn --workers, WEB_CONCURRENCY=2
    "docker/Dockerfile.asgi": 2,  # Gunicorn's asgi worker, WEB_CONCURRENCY=2
    "docker/Dockerfile.k8s": 0,  # one uvicorn process, no workers
}
SHELL_FORM = "docker/Dockerfile.shell-form"
HADOLINT = Path(sys.executable).parent / "hadolint"
#: The base image's Python (its /usr/local/bin) is played by the Python running the tests.
PYTHON_BIN = Path(sys.base_prefix) / "bin"
BASE_IMAGE_ENV = {  # what python:3.12-slim-* sets that matters here
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
ETC_FILES = ("passwd", "group", "login.defs")
UV_FILES = ("/uv", "/uvx")


class BuildError(AssertionError):
    pass


# --------------------------------------------------------------------------- the emulator


def uv_binary() -> str:
    """The uv on this machine (it stands in for ``COPY --from=ghcr.io/astral-sh/uv``)."""
    candidates = (os.environ.get("UV"), shutil.which("uv", path=str(PYTHON_BIN)),
                  shutil.which("uv"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    out = subprocess.run(["python3", "-c", "import uv; print(uv.find_uv_bin())"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode == 0:
        return out.stdout.strip()
    raise BuildError("no uv binary found on this machine (install it: python3 -m pip install uv)")


def uv_cache_dir() -> str:
    return subprocess.run([uv_binary(), "cache", "dir"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def dockerignore_patterns(context: Path) -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as (excluded?, regex) pairs; the last pattern that matches wins."""
    rules = []
    for raw in (context / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = os.path.normpath(pattern.strip("/"))
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((not negate, re.compile(regex + r"\Z")))
    return rules


def ignored(rel: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Docker's rule: a path is excluded when it or one of its parent directories is."""
    parts = rel.split("/")
    excluded = False
    for excl, regex in rules:
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = excl
    return excluded


def build_context(source: Path, dest: Path) -> list[str]:
    """Copy ``source`` to ``dest`` the way ``docker build`` sends it: minus .dockerignore."""
    rules = dockerignore_patterns(source)  # the .dockerignore of DOCKERIGNORE, in a copy
    sent = []
    for path in sorted(source.rglob("*")):
        rel = str(path.relative_to(source))
        if path.is_file() and not ignored(rel, rules):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
            sent.append(rel)
    return sent


@dataclass
class Image:
    """The last stage of an emulated build: its filesystem and its runtime metadata."""

    dockerfile: harness.Snippet
    root: Path
    stages: dict[str, Image]
    env: dict[str, str]
    workdir: str
    user: str | None = None
    expose: list[int] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    cmd_form: str = "exec"
    healthcheck: list[str] | None = None
    healthcheck_options: dict[str, str] = field(default_factory=dict)

    # ---- paths
    def host_path(self, image_path: str) -> Path:
        """Where a path of the image lives on this machine."""
        inside = self.root / image_path.lstrip("/")
        if inside.exists():
            return inside
        if image_path.rstrip("/") == "/usr/local/bin":
            return PYTHON_BIN
        return Path(image_path)

    def host_search_path(self, path_value: str) -> str:
        out = []
        for entry in path_value.split(":"):
            if entry and (self.root / entry.lstrip("/")).is_dir():
                out.append(str(self.root / entry.lstrip("/")))
            if entry:
                out.append(str(PYTHON_BIN if entry == "/usr/local/bin" else Path(entry)))
        return ":".join(out)

    # ---- the user
    def passwd(self) -> dict[str, tuple[int, int, str]]:
        users = {}
        for line in (self.root / "etc/passwd").read_text().splitlines():
            name, _, uid, gid, _, home, _ = line.split(":")
            users[name] = (int(uid), int(gid), home)
        return users

    def groups(self) -> dict[str, int]:
        return {ln.split(":")[0]: int(ln.split(":")[2])
                for ln in (self.root / "etc/group").read_text().splitlines()}

    def uid_gid_home(self) -> tuple[int, int, str]:
        """USER resolved against the image's /etc/passwd, as the runtime resolves it."""
        spec = self.user or "root"
        user, _, group = spec.partition(":")
        users = self.passwd()
        by_uid = {uid: (name, gid, home) for name, (uid, gid, home) in users.items()}
        if user.isdigit():
            uid = int(user)
            gid, home = (by_uid[uid][1], by_uid[uid][2]) if uid in by_uid else (uid, "/")
        else:
            uid, gid, home = users[user]
        if group:
            gid = int(group) if group.isdigit() else self.groups()[group]
        return uid, gid, home

    # ---- running
    def runtime_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What a process in the container sees: the image's ENV, HOME, and `docker run -e`."""
        env = dict(self.env)
        env["HOME"] = self.uid_gid_home()[2]
        env.update(extra or {})
        env["PATH"] = self.host_search_path(env["PATH"])
        env[harness.SERVER_MARK_VAR] = harness.base_env()[harness.SERVER_MARK_VAR]
        return env

    def command(self, argv: list[str], *, env: dict[str, str] | None = None,
                pid1: bool = False) -> str:
        """The shell command that runs ``argv`` inside the emulated container."""
        prefix = list(pid_namespace()) if pid1 else []
        prefix += ["env", "-i", *(f"{k}={v}" for k, v in self.runtime_env(env).items())]
        if os.geteuid() == 0:
            uid, gid, _ = self.uid_gid_home()
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                       "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--"]
        return shlex.join(prefix + argv)

    def cmd_snippet(self, argv: list[str] | None = None, **kwargs) -> InImage:
        return InImage(ref=self.dockerfile.ref, path=self.dockerfile.path, section=None,
                       command=self.command(self.cmd if argv is None else argv, **kwargs))

    @property
    def cwd(self) -> Path:
        return self.host_path(self.workdir)


@functools.cache
def pid_namespace() -> tuple[str, ...]:
    """The prefix that runs a command as PID 1 of a new PID namespace, as a container runtime
    does: plain `unshare` as root, with a user namespace otherwise."""
    prefix = ["unshare", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-current-user"]
    probe = subprocess.run([*prefix, "sh", "-c", "echo $$"], capture_output=True, text=True,
                           timeout=30)
    if probe.stdout.strip() != "1":
        raise BuildError(f"this machine cannot start a process in a new PID namespace with "
                         f"{shlex.join(prefix)}: {probe.stderr.strip() or probe.stdout.strip()} "
                         "(run the tests as root, or allow unprivileged user namespaces)")
    return tuple(prefix)


@dataclass(frozen=True)
class InImage(harness.Snippet):
    """A command an image runs (its CMD or HEALTHCHECK), in a form the harness can start."""

    command: str = ""

    @property
    def text(self) -> str:
        return self.command


def structure(ref: str) -> list[dict]:
    """The Dockerfile's instructions, parsed by dockerfile-parse (comments dropped)."""
    with harness.snippet(ref).path.open("rb") as f:
        parsed = DockerfileParser(fileobj=f)
        return [i for i in parsed.structure if i["instruction"] != "COMMENT"]


def exec_or_shell(value: str) -> tuple[list[str], str]:
    """CMD/HEALTHCHECK CMD: JSON (exec form) or a string that Docker runs with /bin/sh -c."""
    value = value.strip()
    if value.startswith("["):
        return json.loads(value), "exec"
    return ["/bin/sh", "-c", value], "shell"


def stages_of(ref: str) -> list[tuple[str, str, list[dict]]]:
    """(alias, base image, instructions) for each stage, in order."""
    out: list[tuple[str, str, list[dict]]] = []
    for ins in structure(ref):
        if ins["instruction"] == "FROM":
            words = ins["value"].split()
            alias = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(out))
            out.append((alias, words[0], []))
        elif not out:
            raise BuildError(f"{ref}: {ins['instruction']} before FROM")
        else:
            out[-1][2].append(ins)
    return out


#: Finished stages by content (instructions + build context), shared by the Dockerfiles of this
#: test process the way Docker's build cache shares identical stages.
_STAGE_CACHE: dict[str, Image] = {}


def build(ref: str, workspace: Path) -> Image:
    """Build the image a Dockerfile describes, as far as this machine allows (see module doc)."""
    snip = harness.snippet(ref)
    context = workspace / "context"
    context.mkdir()
    build_context(CONTEXT, context)
    digest = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    stages: dict[str, Image] = {}
    image: Image | None = None
    for n, (alias, base, instructions) in enumerate(stages_of(ref)):
        where = f"{snip.rel}: stage {alias}"
        if not re.fullmatch(r"python:3\.12(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base):
            raise BuildError(f"{where}: base {base!r} is not a pinned python:3.12 slim image")
        key = json.dumps([base, [(i["instruction"], i["value"]) for i in instructions],
                          digest.hexdigest()])
        copies_stage = any(f"--from={name}" in i["value"].split()
                           for i in instructions for name in stages)
        if key in _STAGE_CACHE and not copies_stage:
            image = _STAGE_CACHE[key]
        else:
            root = workspace / ("root" if n == len(stages_of(ref)) - 1 else f"stage-{alias}")
            image = build_stage(snip, root, base, instructions, context, stages)
            if not copies_stage:
                _STAGE_CACHE[key] = image
        stages[alias] = image
    assert image is not None, f"{snip.rel}: no FROM"
    return image


def build_stage(snip: harness.Snippet, root: Path, base: str, instructions: list[dict],
                context: Path, stages: dict[str, Image]) -> Image:
    root.mkdir(mode=0o755)
    (root / "etc").mkdir()
    for name in ETC_FILES:  # the base image's accounts: this Debian machine's
        shutil.copy(f"/etc/{name}", root / "etc" / name)
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).touch(mode=0o600)
    image = Image(snip, root, stages, dict(BASE_IMAGE_ENV), "/")
    for ins in instructions:
        kind, value = ins["instruction"], ins["value"]
        where = f"{snip.rel}:{ins['startline'] + 1}"
        if kind == "WORKDIR":
            image.workdir = os.path.join(image.workdir, value)
            (root / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif kind == "ENV":
            env = image.env
            for item in shlex.split(value):
                key, _, val = item.partition("=")
                env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m, env=env: env.get(m[1], ""), val)
        elif kind == "COPY":
            copy(image, value, context, where)
        elif kind == "RUN":
            run_instruction(image, value, where)
        elif kind == "USER":
            image.user = value.strip()
        elif kind == "EXPOSE":
            image.expose = [int(p.split("/")[0]) for p in value.split()]
        elif kind == "HEALTHCHECK":
            options, _, command = value.partition("CMD")
            image.healthcheck, _ = exec_or_shell(command)
            image.healthcheck_options = dict(o.lstrip("-").split("=", 1) for o in options.split())
        elif kind == "CMD":
            image.cmd, image.cmd_form = exec_or_shell(value)
        else:
            raise BuildError(f"{where}: the emulator does not know {kind}; teach it or drop it")
    return image


def copy(image: Image, value: str, context: Path, where: str) -> None:
    args = shlex.split(value)
    flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--")}
    *sources, dest = [a for a in args if not a.startswith("--")]
    unknown = set(flags) - {"--from"}
    if unknown:
        raise BuildError(f"{where}: COPY flags {unknown} are not emulated")
    dest = dest if dest.startswith("/") else os.path.join(image.workdir, dest)
    target = image.root / dest.lstrip("/")
    origin = flags.get("--from")
    for src in sources:
        from_root = None
        if origin is None:
            found = context / src
            if not found.exists():
                raise BuildError(f"{where}: COPY {src}: not in the build context (.dockerignore?)")
        elif origin in image.stages:
            from_root = image.stages[origin].root
            found = from_root / src.lstrip("/")
            if not found.exists():
                raise BuildError(f"{where}: COPY --from={origin} {src}: not in that stage")
        elif re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", origin) and src in UV_FILES:
            found = Path(uv_binary()).with_name(src.lstrip("/"))
        else:
            raise BuildError(f"{where}: COPY --from={origin} is not emulated")
        into = target / found.name if (dest.endswith("/") or len(sources) > 1) else target
        into.parent.mkdir(parents=True, exist_ok=True)
        if found.is_dir():
            copy_tree(found, into, from_root, image.root)
        else:
            shutil.copy2(found, into)


def copy_tree(src: Path, dest: Path, from_root: Path | None, to_root: Path) -> None:
    """Copy a directory between stages (hard links: nothing writes to them afterwards).

    In a real image both stages' roots are "/", so absolute paths inside the copied files
    (a virtual environment's script shebangs) stay right. Here the roots are two directories,
    so a shebang naming the source root is rewritten to name the destination root.
    """
    shutil.copytree(src, dest, symlinks=True, copy_function=os.link)
    if from_root is None:
        return
    old, new = f"#!{from_root}/".encode(), f"#!{to_root}/".encode()
    for path in dest.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.parent.name == "bin":
            data = path.read_bytes()
            if data.startswith(old):
                path.unlink()  # break the hard link before writing
                path.write_bytes(new + data[len(old):])
                path.chmod(0o755)


def run_instruction(image: Image, value: str, where: str) -> None:
    words = shlex.split(value)
    mounts = [w for w in words if w.startswith("--mount=")]
    words = [w for w in words if not w.startswith("--mount=")]
    # The machine's own settings (proxy, certificates) stay: a real build gets them too.
    env = harness.base_env({**image.env, "HOME": os.environ.get("HOME", "/root"),
                            "PATH": image.host_search_path(image.env["PATH"])})
    if any("target=/root/.cache/uv" in m for m in mounts):
        env["UV_CACHE_DIR"] = uv_cache_dir()  # the persistent build cache
    commands, current = [], []
    for w in [*words, "&&"]:
        if w == "&&":
            commands.append(current)
            current = []
        else:
            current.append(w)
    for argv in commands:
        if argv[0] in ("groupadd", "useradd"):
            argv = [shutil.which(argv[0], path="/usr/sbin:/sbin") or argv[0], "--prefix",
                    str(image.root), *argv[1:]]
        elif argv[0] != "uv":
            raise BuildError(f"{where}: RUN {argv[0]} is not emulated")
        r = subprocess.run(argv, cwd=image.host_path(image.workdir), env=env,
                           capture_output=True, text=True, timeout=180)
        if r.returncode:
            raise BuildError(f"{where}: RUN {shlex.join(argv)} failed ({r.returncode}):\n"
                             + r.stderr[-3000:])


def wait_for_processes(server: harness.Server, workers: int) -> None:
    if workers:
        server.wait_for_workers(workers)


def healthcheck(image: Image, server: harness.Server) -> harness.Result:
    return harness.run(image.cmd_snippet(image.healthcheck), server=server, cwd=image.cwd,
                       check=False, timeout=30)


# --------------------------------------------------------------------------- built images

_BUILT: dict[str, Image] = {}
_WORKSPACES: list[Path] = []


def new_workspace() -> Path:
    """A directory every user can enter (pytest's tmp_path is private to its owner)."""
    while True:
        path = Path(tempfile.mkdtemp(prefix="handbook-docker-"))
        if not re.search(r"0\.0\.0\.0|8000|8443|8080|8089", str(path)):
            break  # the rewrite must not touch the path
        path.rmdir()
    path.chmod(0o755)
    _WORKSPACES.append(path)
    return path


def remove_workspaces() -> None:
    """Delete every image built in this process, and forget them (and the stage cache)."""
    for path in _WORKSPACES:
        shutil.rmtree(path, ignore_errors=True)
    _WORKSPACES.clear()
    _BUILT.clear()
    _STAGE_CACHE.clear()


@pytest.fixture(scope="module", autouse=True)
def _workspaces_removed() -> Iterator[None]:
    """Images live as long as this module's tests in one process (the build is shared)."""
    yield
    remove_workspaces()


def image_of(ref: str) -> Image:
    """The image a Dockerfile builds, built once per test process (like Docker's build cache)."""
    if ref not in _BUILT:
        _BUILT[ref] = build(ref, new_workspace())
    return _BUILT[ref]


def image_group(ref: str) -> pytest.MarkDecorator:
    """Tests of one image run in one process, so it is built once."""
    return pytest.mark.xdist_group(f"image-{Path(ref).name}")


def docker_run(ref: str) -> tuple[dict[str, str], dict[int, int], dict[str, str], str]:
    """A `docker run` snippet's -e variables, -p mappings, other options, and image name."""
    words = shlex.split(harness.command_of(harness.snippet(ref)))
    assert words[:2] == ["docker", "run"], words
    env, ports, options, rest = {}, {}, {}, words[2:]
    while rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--rm":
            continue
        value = rest.pop(0)
        if flag == "-e":
            key, _, val = value.partition("=")
            env[key] = val
        elif flag == "-p":
            host, _, container = value.rpartition(":")
            ports[int(container)] = int(host)
        else:
            options[flag] = value
    return env, ports, options, rest[0]


def listening_ports(proc: psutil.Process) -> set[tuple[str, int]]:
    return {(c.laddr.ip, c.laddr.port) for c in proc.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN}


def wait_for_log_count(server: harness.Server, pattern: str, count: int, timeout: float = 30,
                       ) -> None:
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, server.log())) < count:
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise server.fail(f"log did not show {count} x {pattern!r}")
        time.sleep(0.1)


# --------------------------------------------------------------------------- lint and parse


def test_hadolint_passes_every_dockerfile() -> None:
    """The lint command on the page names every recommended Dockerfile, and hadolint passes them."""
    snip = harness.snippet("docker/lint.sh")
    linted = set(shlex.split(harness.command_of(snip))[1:])
    assert linted == {Path(ref).name for ref in DOCKERFILES}
    result = harness.run(snip, env={"PATH": f"{HADOLINT.parent}:/usr/bin:/bin"})
    assert result.output.strip() == "", result.output


def test_hadolint_flags_the_shell_form_cmd() -> None:
    """hadolint rejects the shell-form CMD (DL3025), and nothing else in that file."""
    path = harness.snippet(SHELL_FORM).path
    r = subprocess.run([HADOLINT, "--no-color", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert re.findall(r"\b(DL\d+|SC\d+)\b", r.stdout) == ["DL3025"], r.stdout


@pytest.mark.parametrize("ref", [*DOCKERFILES, SHELL_FORM])
def test_dockerfile_follows_the_page(ref: str) -> None:
    """Pinned slim base, one base for both stages, locked install, code last, numeric USER."""
    ins = structure(ref)
    froms = [i["value"].split()[0] for i in ins if i["instruction"] == "FROM"]
    assert froms == ["python:3.12-slim-bookworm"] * 2, froms
    uv = [i["value"] for i in ins if i["value"].startswith("--from=ghcr.io/astral-sh/uv")]
    assert len(uv) == 1 and re.match(r"--from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ ", uv[0]), uv
    runs = [i["value"] for i in ins if i["instruction"] == "RUN"]
    assert any(" uv sync --locked " in f" {r} " for r in runs), runs
    copies = [i["value"] for i in ins if i["instruction"] == "COPY"]
    assert copies.index("pyproject.toml uv.lock ./") < copies.index("main.py ./")
    users = [i["value"] for i in ins if i["instruction"] == "USER"]
    assert len(users) == 1 and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[0]), users
    assert ins[-1]["instruction"] == "CMD"


def test_variants_differ_only_in_env_healthcheck_and_cmd() -> None:
    """The variants share every other instruction with the main Dockerfile."""
    def rest(ref: str) -> list[tuple[str, str]]:
        return [(i["instruction"], i["value"]) for i in structure(ref)
                if i["instruction"] not in ("ENV", "HEALTHCHECK", "CMD")]

    for ref in [*DOCKERFILES, SHELL_FORM]:
        assert rest(ref) == rest("docker/Dockerfile"), ref


# --------------------------------------------------------------------------- the build


def test_build_context_holds_only_what_the_image_needs() -> None:
    """.dockerignore keeps secrets, virtual environments, caches and the Dockerfiles out."""
    work = new_workspace()
    project = work / "project"
    shutil.copytree(CONTEXT, project)
    for planted in (".env", ".git/config", ".venv/bin/python", "__pycache__/main.cpython-312.pyc",
                    "notes/secret.txt", "tests/test_main.py", "id_rsa"):
        (project / planted).parent.mkdir(parents=True, exist_ok=True)
        (project / planted).write_text("must not reach the image\n")
    assert (project / ".dockerignore").read_text() == DOCKERIGNORE.path.read_text()
    sent = build_context(project, work / "sent")
    assert sorted(sent) == sorted(s.path.name for s in (APP, PYPROJECT, LOCK))


def test_lock_is_up_to_date_with_pyproject() -> None:
    """The lock command leaves uv.lock unchanged: it is exactly what pyproject.toml resolves to."""
    work = new_workspace()
    for snip in (PYPROJECT, LOCK):
        shutil.copy(snip.path, work / snip.path.name)
    harness.run("docker/lock.sh", cwd=work, env={
        "PATH": f"{Path(uv_binary()).parent}:{PYTHON_BIN}:/usr/bin:/bin",
        "UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"})
    assert (work / "uv.lock").read_bytes() == LOCK.path.read_bytes()


def test_lock_pins_the_versions_the_suite_verified() -> None:
    """Every package in the image's lock has the version the handbook's own lock runs."""
    def versions(path: Path) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for pkg in tomllib.loads(path.read_text())["package"]:
            found.setdefault(pkg["name"], set()).add(pkg["version"])
        return found

    image, suite = versions(LOCK.path), versions(harness.ROOT / "uv.lock")
    image.pop("fastapi-app")
    assert {"fastapi", "gunicorn", "uvicorn", "uvicorn-worker", "uvloop"} <= set(image)
    wrong = {name: (v, suite.get(name)) for name, v in image.items()
             if not v <= suite.get(name, set())}
    assert not wrong, f"versions differ from the suite's uv.lock: {wrong}"


@pytest.mark.parametrize("change", ["pyproject", "hash"])
def test_locked_install_refuses_a_lock_that_does_not_match(change: str) -> None:
    """The build's `uv sync --locked` fails on a stale lock and on a file whose hash differs."""
    work = new_workspace()
    for snip in (PYPROJECT, LOCK):
        shutil.copy(snip.path, work / snip.path.name)
    if change == "pyproject":
        text = (work / "pyproject.toml").read_text()
        (work / "pyproject.toml").write_text(re.sub(r'\n\s*"uvicorn-worker==[^"]+",', "", text))
        expected = "needs to be updated, but `--locked` was provided"
    else:
        text = (work / "uv.lock").read_text()
        m = re.search(r'idna-[\d.]+-py3-none-any\.whl", hash = "sha256:([0-9a-f]{64})', text)
        (work / "uv.lock").write_text(text[: m.start(1)] + "0" * 64 + text[m.end(1):])
        expected = "Hash mismatch for `idna"
    run = next(i["value"] for i in structure("docker/Dockerfile") if "uv sync" in i["value"])
    argv = [w for w in shlex.split(run) if not w.startswith("--mount=")]
    env = harness.base_env({"PATH": f"{Path(uv_binary()).parent}:{PYTHON_BIN}:/usr/bin:/bin",
                            "UV_PYTHON_DOWNLOADS": "never"})
    r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and expected in " ".join(r.stderr.split()), r.stderr


@image_group("docker/Dockerfile")
def test_image_user_exists_with_the_ids_of_user_instruction() -> None:
    """USER 10001:10001 is the account the RUN line creates (run with useradd --prefix)."""
    image = image_of("docker/Dockerfile")
    uid, gid, home = image.uid_gid_home()
    assert (uid, gid, home) == (10001, 10001, "/nonexistent")
    assert image.passwd()["app"][:2] == (uid, gid) and image.groups()["app"] == gid
    assert not (image.root / "bin/uv").exists(), "uv stays in the build stage"
    assert (image.root / "app/.venv/bin/gunicorn").is_file()


def test_useradd_system_gives_another_group() -> None:
    """Why the Dockerfile runs groupadd: `useradd --system --user-group` picks a system GID."""
    work = new_workspace()
    (work / "etc").mkdir()
    for name in ETC_FILES:
        shutil.copy(f"/etc/{name}", work / "etc" / name)
    for name in ("shadow", "gshadow"):
        (work / "etc" / name).touch(mode=0o600)
    subprocess.run(["useradd", "--prefix", str(work), "--system", "--no-log-init", "--uid", "10001",
                    "--user-group", "--no-create-home", "app"], check=True, capture_output=True,
                   timeout=30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    passwd = (work / "etc/passwd").read_text().splitlines()
    entry = next(ln for ln in passwd if ln.startswith("app:"))
    gid = int(entry.split(":")[3])
    assert gid != 10001 and gid < 1000, entry


# --------------------------------------------------------------------------- running images


@pytest.mark.parametrize(("ref", "workers"),
                         [pytest.param(r, n, marks=image_group(r), id=Path(r).name)
                          for r, n in DOCKERFILES.items()])
def test_image_serves_on_its_exposed_port_as_non_root(ref: str, workers: int, log_dir: Path,
                                                      ) -> None:
    """CMD runs as the image would: non-root, on the EXPOSEd port; the health check passes."""
    image = image_of(ref)
    uid = image.uid_gid_home()[0]
    assert uid != 0 and len(image.expose) == 1 and image.cmd_form == "exec"
    single = workers == 0  # one uvicorn process: it re-raises SIGTERM once it has shut down
    with harness.serving(image.cmd_snippet(), log_dir=log_dir, cwd=image.cwd,
                         ready_path="/healthz", expect_clean=not single) as server:
        wait_for_processes(server, workers)
        main = server.main_process()
        serving = server.workers() or [main]
        assert len(serving) == max(workers, 1) and (workers or not main.children())
        assert listening_ports(main) == {("127.0.0.1", server.ports[image.expose[0]])}
        if os.geteuid() == 0:  # when the tests run as root, the server switched to USER
            assert {p.uids().real for p in [main, *serving]} == {uid}
        assert main.cwd() == str(image.cwd)
        assert server.get("/").json()["pid"] in {p.pid for p in serving}
        assert server.get("/readyz").status_code == 200
        if image.healthcheck:
            assert healthcheck(image, server).returncode == 0
        assert "Control server error" not in server.log()
    if single:
        assert server.proc.returncode == -signal.SIGTERM and not server.processes()
        assert "Application shutdown complete" in server.log()
    if image.healthcheck:  # the same check fails once the server is gone
        assert healthcheck(image, server).returncode != 0


@image_group("docker/Dockerfile")
def test_docker_run_sets_workers_and_stop_timeout(log_dir: Path) -> None:
    """`docker run -e WEB_CONCURRENCY=3`: 3 workers; --stop-timeout outlasts --graceful-timeout."""
    env, ports, options, name = docker_run("docker/run.sh")
    image = image_of("docker/Dockerfile")
    assert name == "fastapi-app" and "fastapi-app" in harness.snippet("docker/build.sh").text
    assert set(ports) == set(image.expose)
    graceful = int(image.cmd[image.cmd.index("--graceful-timeout") + 1])
    assert int(options["--stop-timeout"]) > graceful
    with harness.serving(image.cmd_snippet(env=env), log_dir=log_dir, cwd=image.cwd) as server:
        assert len(server.wait_for_workers(int(env["WEB_CONCURRENCY"]))) == 3


@image_group("docker/Dockerfile.uvicorn")
def test_docker_run_sets_the_uvicorn_port(log_dir: Path) -> None:
    """`-e UVICORN_PORT=8080`: uvicorn listens there, and the health check follows it."""
    env, ports, _, name = docker_run("docker/run_uvicorn.sh")
    image = image_of("docker/Dockerfile.uvicorn")
    assert "-f Dockerfile.uvicorn -t " + name in harness.snippet("docker/build.sh").text
    assert ports == {8080: 8080} and env == {"UVICORN_PORT": "8080"}
    with harness.serving(image.cmd_snippet(env=env), log_dir=log_dir, cwd=image.cwd) as server:
        server.wait_for_workers(2)
        assert listening_ports(server.main_process()) == {("127.0.0.1", server.ports[8080])}
        check = harness.run(image.cmd_snippet(image.healthcheck, env=env), server=server,
                            cwd=image.cwd, check=False)
        assert check.returncode == 0, check.output


def test_servers_read_web_concurrency_and_gunicorn_reads_port_only_without_bind() -> None:
    """Both servers default to 1 worker and read WEB_CONCURRENCY; Gunicorn binds 0.0.0.0:$PORT
    without --bind, else 127.0.0.1:8000; its graceful timeout defaults to 30 s."""
    code = ("from gunicorn.config import Config; import uvicorn; c = Config();"
            "print(c.workers, uvicorn.Config('main:app').workers, c.bind[0], c.graceful_timeout)")

    def ask(**env: str) -> list[str]:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=harness.base_env(env), check=True, timeout=60).stdout.split()

    assert ask() == ["1", "1", "127.0.0.1:8000", "30"]
    assert ask(WEB_CONCURRENCY="5", PORT="9000") == ["5", "5", "0.0.0.0:9000", "30"]


@image_group("docker/Dockerfile")
def test_gunicorn_control_socket_needs_a_writable_home(log_dir: Path) -> None:
    """Without --no-control-socket, Gunicorn logs an error: USER has no writable HOME."""
    image = image_of("docker/Dockerfile")
    argv = [a for a in image.cmd if a != "--no-control-socket"]
    with harness.serving(image.cmd_snippet(argv), log_dir=log_dir, cwd=image.cwd) as server:
        server.wait_for_workers(2)
        server.wait_for_log(r"\[ERROR\] Control server error: \[Errno 13\] Permission denied: "
                            r"'/nonexistent'")
        assert server.get("/").status_code == 200  # it serves anyway


# --------------------------------------------------------------------------- signals and PID 1


def pid1_of(server: harness.Server) -> psutil.Process:
    """PID 1 of the container: the one child of `unshare --fork`."""
    deadline = time.monotonic() + 20
    while True:
        children = psutil.Process(server.proc.pid).children()
        if len(children) == 1:
            status = Path(f"/proc/{children[0].pid}/status").read_text()
            assert re.search(r"^NSpid:\s+\d+\s+1$", status, re.M), status
            return children[0]
        if time.monotonic() > deadline:
            raise server.fail("no PID 1 under unshare")
        time.sleep(0.05)


STOP_TIMEOUT = 3  # seconds between SIGTERM and SIGKILL here; `docker stop` waits 10 by default
READY = r"\[INFO\] Application startup complete"


@image_group(SHELL_FORM)
def test_shell_form_cmd_never_delivers_sigterm(log_dir: Path) -> None:
    """Shell form: /bin/sh (dash) stays PID 1, ignores SIGTERM, and Gunicorn never hears it."""
    image = image_of(SHELL_FORM)
    assert image.cmd_form == "shell" and image.cmd[:2] == ["/bin/sh", "-c"]
    server = harness.start(image.cmd_snippet(pid1=True), log_dir=log_dir, cwd=image.cwd)
    try:
        server.wait_ready("/healthz")
        wait_for_log_count(server, READY, 2)
        pid1 = pid1_of(server)
        assert pid1.name() == "sh" and [c.name() for c in pid1.children()] == ["gunicorn"]
        os.kill(pid1.pid, signal.SIGTERM)  # what `docker stop` sends first
        time.sleep(STOP_TIMEOUT)
        assert pid1.is_running() and server.get("/").status_code == 200
        assert "Handling signal: term" not in server.log()
        gunicorn = pid1.children()
        os.kill(pid1.pid, signal.SIGKILL)  # what `docker stop` sends when its timeout runs out
        assert server.proc.wait(timeout=20) != 0
        psutil.wait_procs(gunicorn, timeout=10)  # the kernel kills the rest of the namespace
        assert not any(p.is_running() for p in gunicorn)
        assert "Shutting down: Master" not in server.log()
    finally:
        server.stop(expect_clean=False)


@pytest.mark.parametrize("form", [
    pytest.param("exec form", marks=image_group("docker/Dockerfile")),
    pytest.param("shell form with exec", marks=image_group(SHELL_FORM)),
])
def test_exec_form_cmd_shuts_down_gracefully(form: str, log_dir: Path) -> None:
    """Exec form (or `exec` in a shell form): Gunicorn is PID 1, gets SIGTERM, exits 0 quickly."""
    if form == "exec form":
        image = image_of("docker/Dockerfile")
        argv = image.cmd
    else:
        image = image_of(SHELL_FORM)
        argv = [*image.cmd[:2], "exec " + image.cmd[2]]
    server = harness.start(image.cmd_snippet(argv, pid1=True), log_dir=log_dir, cwd=image.cwd)
    try:
        server.wait_ready("/healthz")
        wait_for_log_count(server, READY, 2)
        pid1 = pid1_of(server)
        assert pid1.name() == "gunicorn"
        start = time.monotonic()
        os.kill(pid1.pid, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        assert time.monotonic() - start < 10, "within even Docker's default stop timeout"
        log = server.log()
        assert "Handling signal: term" in log and "Shutting down: Master" in log
        assert log.count("Application shutdown complete") == 2
    finally:
        server.stop(expect_clean=False)
