"""The one module that owns the life of every server and command the tests run.

A page shows a command; a test runs exactly that command, with one documented
rewrite (see :func:`rewrite`):

* the host ``0.0.0.0`` becomes ``127.0.0.1``, so nothing listens beyond loopback;
* each public port a page uses (8000, 8443, 8080, 8089) becomes a free port;
* the Unix socket ``/run/gunicorn.sock`` becomes a private path (see :func:`unix_socket`).

Everything else, including environment variables set on the page, runs as shown.
The environment around it is isolated, not rewritten: variables that would configure
a server behind the page's back (``GUNICORN_CMD_ARGS``, ``WEB_CONCURRENCY``, ``PORT``,
``FORWARDED_ALLOW_IPS``, ``UVICORN_*``) are removed, and each server gets its own
``XDG_RUNTIME_DIR`` (Gunicorn's control socket lives there).

A :class:`Server` is started in its own session (so in its own process group),
waited for with a bounded deadline, logged to a file, and stopped the way a
container runtime stops PID 1: SIGTERM to the process the command started, then,
after a bounded wait, SIGKILL to its whole process group. Any failure raises
:class:`HarnessError` with the snippet, the command as run, its exit code and the
tail of its log.

Every process the harness starts carries ``HANDBOOK_STARTED_BY=<run id>`` in its
environment; ``tests/conftest.py`` sweeps for leftovers at the end of the session.

Every command runs in the *reader's environment* of its page (see :func:`reader_env`): a
virtual environment built only from the requirements files that page shows, so a command
that needs a package its page never tells the reader to install fails here too.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # a maintainer script's import
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import snippets as addresses  # noqa: E402  (the one snippet-address parser)

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "snippets"
DOCS = ROOT / "docs"
HOST = "127.0.0.1"
#: Ports that pages may show; each is replaced by a free port when a test runs the command.
PUBLIC_PORTS = (8000, 8443, 8080, 8089)
#: Marks every process the harness starts, so the end-of-session sweep can find strays.
RUN_ID_VAR = "HANDBOOK_RUN_ID"
SERVER_MARK_VAR = "HANDBOOK_STARTED_BY"
LOG_TAIL_LINES = 40

# Every process group the harness started and has not yet reaped, in this process.
_LIVE_GROUPS: set[int] = set()


class HarnessError(AssertionError):
    """A snippet, a command or a server did not behave; the message says which and why."""


# --------------------------------------------------------------------------- snippets


@dataclass(frozen=True)
class Snippet:
    """A file under ``snippets/``, addressed as on a page: ``topic/file`` or ``topic/file:section``
    (parsed by ``tools/snippets.py``, the one parser of those addresses)."""

    ref: str
    path: Path
    section: str | None
    #: Set by :func:`variant`: the command a test built from this snippet, run in its place.
    built: str | None = None

    @property
    def text(self) -> str:
        if self.built is not None:
            return self.built
        try:
            return addresses.text_of(addresses.parse(self.ref))
        except addresses.AddressError as e:
            raise HarnessError(str(e)) from None

    @property
    def rel(self) -> str:
        """The path as reports name it: relative to the repository, or as is for a file a test
        derived from a snippet (a unit file's ExecStart written to a temporary script)."""
        return _rel(self.path)

    @property
    def folder(self) -> Path:
        return self.path.parent


def snippet(ref: str) -> Snippet:
    """The snippet a page includes as ``--8<-- "ref"``; a missing file or section is an error."""
    address = addresses.parse(ref)
    snip = Snippet(ref=ref, path=address.path, section=address.section)
    snip.text  # noqa: B018 - fail early on a missing file or section
    return snip


def variant(of: Snippet | str, command: str) -> Snippet:
    """A command a test builds from a page's snippet (a variant, a quicker run, the same
    command wrapped as a container runtime would), run and reported under that snippet's
    name and in its page's reader environment."""
    snip = snippet(of) if isinstance(of, str) else of
    return Snippet(ref=snip.ref, path=snip.path, section=snip.section, built=command)


def command_of(snip: Snippet) -> str:
    """The shell command a ``.sh`` snippet shows, without comment lines."""
    lines = [ln for ln in snip.text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise HarnessError(f"{snip.rel}: the snippet holds no command")
    return "\n".join(lines)


# --------------------------------------------------------------------------- reader environments

#: Where reader environments live, one per set of requirements (ignored by git, kept across runs).
READER_ENVS = ROOT / ".cache" / "reader-envs"
#: The install step of a page that shows no requirements of its own.
QUICKSTART_REQUIREMENTS = "quickstart/requirements.txt"
#: Maintainer commands under snippets/ (the version grid's): they run the tooling, which imports
#: the test harness, so they run with the test environment; the server commands they start still
#: run in their pages' reader environments. (The measuring code lives in tools/, behind
#: ``python -m tools measure``.)
MAINTAINER_COMMANDS = frozenset({
    "versions/grid.sh", "versions/bisect.sh", "versions/check.sh", "versions/canary.sh",
})
_REQUIREMENTS_FILE = re.compile(r"[\w-]+/requirements[\w.-]*\.txt")


def page_requirements(topic: str) -> list[str]:
    """The requirements files a page shows the reader (``topic/requirements*.txt`` includes),
    in page order; a page that shows none links to the quick start's install step."""
    page = DOCS / f"{topic}.md"
    lines = page.read_text("utf-8").splitlines() if page.is_file() else []
    included = (addresses.INCLUDE_RE.match(line) for line in lines)
    refs = [addresses.parse(m["target"]).file for m in included if m]
    refs = [ref for ref in refs if _REQUIREMENTS_FILE.fullmatch(ref)]
    return list(dict.fromkeys(refs)) or [QUICKSTART_REQUIREMENTS]


@dataclass(frozen=True)
class ReaderEnv:
    """A virtual environment holding only what a page tells the reader to install."""

    page: str  # "docs/servers.md"
    requirements: tuple[Path, ...]
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def sources(self) -> str:
        return ", ".join(_rel(p) for p in self.requirements)

    def env(self) -> dict[str, str]:
        """PATH with this environment first and the test environment's bin taken out."""
        test_bin = str(Path(sys.executable).parent)
        rest = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d != test_bin]
        return {"PATH": os.pathsep.join([str(self.bin), *rest]), "VIRTUAL_ENV": str(self.path)}

    def metadata(self, name: str):
        """The installed distribution's metadata (``importlib.metadata.PackageMetadata``)."""
        from importlib.metadata import distributions

        site = sorted(self.path.glob("lib/python*/site-packages"))
        wanted = re.sub(r"[-_.]+", "-", name).lower()
        for dist in distributions(path=[str(s) for s in site]):
            if re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower() == wanted:
                return dist.metadata
        raise HarnessError(f"{name} is not installed in the reader environment of {self.page} "
                           f"(built only from {self.sources})")

    def version(self, name: str) -> str:
        """The installed version of a distribution in this environment."""
        return self.metadata(name)["Version"]

    def describe(self) -> str:
        return (f"the reader's environment of {self.page}, built only from {self.sources} "
                f"({self.path})")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def uv_binary() -> str:
    """uv: the one that runs the suite (``uv run`` sets $UV), or one on PATH or beside Python."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"),
                      str(Path(sys.base_prefix) / "bin" / "uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    with contextlib.suppress(ImportError):
        from uv import find_uv_bin  # the uv package, when it is installed in the test venv

        return find_uv_bin()
    raise HarnessError("uv not found: reader environments are built with uv "
                       "(run the suite with `python3 -m uv run --frozen pytest`)")


#: A version set of the grid (``python -m tools grid``): a JSON object ``{"name": "version"}``
#: that every reader environment installs on top of its page's requirements (uv ``--override``).
VERSION_OVERRIDES_VAR = "HANDBOOK_VERSION_OVERRIDES"


def version_overrides() -> dict[str, str]:
    """The versions the grid's current set puts over every page's pins (empty: the pinned set).

    Read from ``$HANDBOOK_VERSION_OVERRIDES`` (a JSON object of distribution name to exact
    version); the pages' requirements files stay as the reader sees them, uv installs these
    versions instead, and the environment's cache key includes them."""
    raw = os.environ.get(VERSION_OVERRIDES_VAR, "").strip()
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError as e:
        raise HarnessError(f"${VERSION_OVERRIDES_VAR} is not JSON: {e}") from None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[\w.!+-]+", v)
            for k, v in found.items()):
        raise HarnessError(f"${VERSION_OVERRIDES_VAR} must map names to exact versions: {raw}")
    return dict(sorted(found.items()))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _override_lines(files: tuple[Path, ...]) -> str:
    """The uv ``--override`` file for these requirements: each overridden distribution at its
    set's version, with the extras the requirements ask for (an override replaces the whole
    requirement, so ``uvicorn==X`` alone would drop ``uvicorn[standard]``'s extras)."""
    overrides = version_overrides()
    extras: dict[str, set[str]] = {}
    for f in files:
        for line in f.read_text("utf-8").splitlines():
            m = re.match(r"\s*([\w.-]+)\[([\w,\s-]+)\]", line)
            if m:
                extras.setdefault(_normalise(m[1]), set()).update(
                    e.strip() for e in m[2].split(",") if e.strip())
    lines = []
    for name, version in overrides.items():
        wanted = sorted(extras.get(_normalise(name), ()))
        lines.append(f"{name}{'[' + ','.join(wanted) + ']' if wanted else ''}=={version}\n")
    return "".join(lines)


_READER_ENVS: dict[tuple, ReaderEnv] = {}
#: pip compiles bytecode when it installs, uv does not unless asked: without it every process
#: compiles each module it imports (Python may run with -B and never cache it), which made each
#: `fastapi run` worker miss Uvicorn's 5 s health check here.
_INSTALL_FLAGS = ("--quiet", "--compile-bytecode")


def reader_env(topic: str, requirements: list[str | Path] | None = None) -> ReaderEnv:
    """The reader's environment of ``docs/<topic>.md``, built once and cached.

    Built only from ``requirements`` (snippet refs or paths), by default the ones the page
    shows (:func:`page_requirements`), with ``uv venv`` and ``uv pip install -r`` (the uv cache
    makes a rebuild fast). Keyed by a hash of the requirements' text, so an edited file gets a
    new environment; a file lock lets parallel test processes share one build. A failed build
    is remembered for the rest of the run and fails every test that needs it, with uv's reason.
    """
    refs = requirements if requirements is not None else page_requirements(topic)
    files = tuple(Path(r) if isinstance(r, Path) else snippet(r).path for r in refs)
    page = f"docs/{topic}.md"
    override_lines = _override_lines(files)
    key = (page, files, override_lines)
    if key in _READER_ENVS:
        return _READER_ENVS[key]
    digest = hashlib.sha256((sys.version + " ".join(_INSTALL_FLAGS)).encode())
    if override_lines:
        digest.update(b"overrides\0" + override_lines.encode())
    for f in files:
        if not f.is_file():
            raise HarnessError(f"{page}: requirements file {_rel(f)} does not exist")
        digest.update(f.read_bytes() + b"\0")
    path = READER_ENVS / digest.hexdigest()[:16]
    env = ReaderEnv(page, files, path)
    READER_ENVS.mkdir(parents=True, exist_ok=True)
    done, failed = path / ".complete", path.with_suffix(".failed")
    run_id = os.environ.get(RUN_ID_VAR, "adhoc")
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.is_file() and failed.read_text().partition("\n")[0] == run_id:
            raise HarnessError(failed.read_text().partition("\n")[2])
        if done.is_file() and not _scripts_point_here(path):
            done.unlink()  # built under another path (a moved checkout): its scripts' #! lines
        if not done.is_file():  # name a Python that is no longer there, so build it again
            shutil.rmtree(path, ignore_errors=True)
            uv = uv_binary()
            override_args = []
            if override_lines:
                override_file = path.with_suffix(".overrides.txt")
                override_file.write_text(override_lines)
                override_args = ["--override", str(override_file)]
            steps = [
                [uv, "venv", "--quiet", "--python", sys.executable, str(path)],
                [
                    uv,
                    "pip",
                    "install",
                    *_INSTALL_FLAGS,
                    "--python",
                    str(path / "bin" / "python"),
                    *[a for f in files for a in ("-r", str(f))],
                    *override_args,
                ],
            ]
            for cmd in steps:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                   env={**os.environ, "VIRTUAL_ENV": str(path)})
                if r.returncode != 0:
                    message = (f"{page}: cannot install what the page tells the reader to install "
                               f"({env.sources})\n  command: {' '.join(cmd)}\n  exit code: "
                               f"{r.returncode}\n" + _indent((r.stdout + r.stderr).strip()))
                    failed.write_text(f"{run_id}\n{message}")
                    raise HarnessError(message)
            done.write_text("\n".join(_rel(f) for f in files) + "\n")
        failed.unlink(missing_ok=True)
    _READER_ENVS[key] = env
    return env


def _scripts_point_here(path: Path) -> bool:
    """Whether the environment's console scripts start with its own Python (``#!`` line)."""
    for script in sorted((path / "bin").iterdir()) if (path / "bin").is_dir() else []:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            first = script.read_bytes()[:300].split(b"\n", 1)[0].decode()
            if first.startswith("#!") and "python" in first:
                return first[2:].strip() == str(path / "bin" / "python")
    return True


_PIN_RE = re.compile(r"([\w.-]+)(?:\[[\w,-]+\])?==(\S+)")


def requirement_pins(ref: str | Path) -> dict[str, str]:
    """``name -> version`` for a requirements file; a line not pinned with ``==`` fails, naming
    the file and line."""
    path = ref if isinstance(ref, Path) else snippet(ref).path
    pins = {}
    for no, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _PIN_RE.fullmatch(line.strip())
        if not m:
            raise HarnessError(f"{_rel(path)}:{no}: {line.strip()!r} is not pinned with ==")
        pins[m[1]] = m[2]
    return pins


def check_reader_env(topic: str, shows: list[str]) -> dict[str, str]:
    """The page ``docs/<topic>.md`` shows exactly the requirements files ``shows``, and its
    reader environment holds exactly the versions they pin (or, in a run of the version grid,
    the versions of its set: :func:`version_overrides`); return those pins."""
    env = reader_env(topic)
    shown = [_rel(f).removeprefix("snippets/") for f in env.requirements]
    assert shown == shows, f"docs/{topic}.md shows the requirements {shown}, not {shows}"
    pins = {
        name: version for f in env.requirements for name, version in requirement_pins(f).items()
    }
    overrides = {_normalise(n): v for n, v in version_overrides().items()}
    pins = {name: overrides.get(_normalise(name), version) for name, version in pins.items()}
    installed = {name: env.version(name) for name in pins}
    wrong = {name: (pinned, installed[name]) for name, pinned in pins.items()
             if installed[name] != pinned}
    assert not wrong, f"{env.describe()}: pinned vs installed {wrong}"
    return pins


def install_as_the_reader(install: str, folder: Path, log_dir: Path) -> dict[str, str]:
    """Run the page's install command in ``folder`` inside a fresh virtual environment made
    with the standard library's venv (pip from the package index, as a reader does); return
    what it installed (``name -> version``, names normalised)."""
    venv = log_dir / "reader-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    run(install, cwd=folder, timeout=300, log_dir=log_dir,
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(venv),
             "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    freeze = subprocess.run([venv / "bin" / "python", "-m", "pip", "freeze"], check=True,
                            capture_output=True, text=True, timeout=60).stdout
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, _, version in
            (line.partition("==") for line in freeze.splitlines() if "==" in line)}


#: The commands whose options and worker classes a version set's release may lack.
_CHECKED_PROGRAMS = ("gunicorn", "gunicornc", "uvicorn")
_HELP: dict[tuple[str, str], str] = {}


def _help_of(binary: Path | str, env_path: str = "") -> str:
    key = (str(binary), env_path)
    if key not in _HELP:
        r = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=120)
        _HELP[key] = r.stdout + r.stderr
    return _HELP[key]


def _worker_classes(reader: ReaderEnv) -> set[str]:
    key = (str(reader.python), "workers")
    if key not in _HELP:
        r = subprocess.run([str(reader.python), "-c", "import gunicorn.workers as w; "
                            "print(' '.join(w.SUPPORTED_WORKERS))"],
                           capture_output=True, text=True, timeout=120)
        _HELP[key] = r.stdout
    return set(_HELP[key].split())


def not_applicable(command: str, snip: Snippet, reader: ReaderEnv | None) -> str | None:
    """In a run of the version grid, why this command cannot apply to the set's releases: it
    runs a program, passes an option or names a Gunicorn worker class that the pinned release
    has and the set's release lacks (read from ``--help`` and Gunicorn's worker table). None
    on the pinned set, and whenever the release has everything the command uses."""
    if reader is None or not version_overrides():
        return None
    pinned_bin = Path(sys.executable).parent
    text = re.sub(r"\\\n", " ", command)
    for segment in re.split(r"\n|&&|\|\||;|\|", text):
        words = segment.split()
        while words and re.fullmatch(r"\w+=\S*", words[0]):
            words.pop(0)
        if not words or words[0] not in _CHECKED_PROGRAMS:
            continue
        prog = words[0]
        dist = "uvicorn" if prog == "uvicorn" else "gunicorn"
        release = f"{dist} {reader.version(dist)}"
        if not (reader.bin / prog).exists():
            return f"{release} has no {prog} command"
        if not (pinned_bin / prog).exists():
            continue
        pinned_help = _help_of(pinned_bin / prog)
        help_ = _help_of(reader.bin / prog, str(reader.path))
        if prog == "gunicorn":  # options exported in GUNICORN_CMD_ARGS are Gunicorn's too
            exported = re.findall(r"GUNICORN_CMD_ARGS=(['\"])(.*?)\1", text, re.S)
            segment = " ".join([segment, *(value for _, value in exported)])
        for option in dict.fromkeys(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", segment)):
            known = re.compile(rf"(?<![\w-]){re.escape(option)}(?![\w-])")
            if known.search(pinned_help) and not known.search(help_):
                return f"{release} has no {option} option"
        if prog == "gunicorn":
            named = re.findall(r"(?:-k|--worker-class)[ =]+['\"]?([\w.:-]+)", segment)
            for flag in ("-c", "--config"):
                if flag in words[:-1]:
                    conf = snip.folder / words[words.index(flag) + 1]
                    if conf.is_file():
                        named += re.findall(r"^worker_class\s*=\s*['\"]([\w.:-]+)['\"]",
                                            conf.read_text("utf-8"), re.M)
            import gunicorn.workers  # the pinned Gunicorn, in the test environment

            for worker in named:
                if ("." not in worker and worker in gunicorn.workers.SUPPORTED_WORKERS
                        and worker not in _worker_classes(reader)):
                    return f"{release} has no {worker} worker class"
    return None


def only_on_the_pinned_set(what: str) -> None:
    """For a claim about the pinned files themselves (what a requirements file pins, what a
    committed reference was generated from): in a grid run of another version set, the test
    skips as "not applicable", saying ``what`` it is about."""
    if version_overrides():
        import pytest

        pytest.skip(f"not applicable: {what}, whatever the version set")


def _skip_if_not_applicable(command: str, snip: Snippet, reader: ReaderEnv | None) -> None:
    reason = not_applicable(command, snip, reader)
    if reason:
        import pytest

        pytest.skip(f"not applicable: {reason} ({snip.rel})")


def reader_env_of(snip: Snippet, requirements: list[str | Path] | None = None) -> ReaderEnv | None:
    """The environment a snippet's command runs in: its page's reader environment (the topic
    is the snippet's folder), or None for a maintainer command, which runs with the tests'."""
    rel = snip.path.relative_to(SNIPPETS) if snip.path.is_relative_to(SNIPPETS) else None
    if requirements is None and (rel is None or str(rel) in MAINTAINER_COMMANDS):
        return None
    return reader_env(rel.parts[0] if rel else snip.path.parent.name, requirements)


#: What a command's output says when it lacks a package.
_MISSING = re.compile(
    r"No module named '[^']+'|[\w./-]+: command not found|[^\n]*\bis not installed\b[^\n]*"
    r"|[^\n]*[Pp]lease install[^\n]*|ModuleNotFoundError[^\n]*|ImportError: [^\n]*"
)


def _missing_report(reader: ReaderEnv | None, log_path: Path) -> list[str]:
    if reader is None:
        return []
    lines = [f"  environment: {reader.describe()}"]
    text = log_path.read_text("utf-8", errors="replace") if log_path.exists() else ""
    found = list(dict.fromkeys(m.group(0).strip() for m in _MISSING.finditer(text)))
    if found:
        lines.append(f"  a package {reader.page} does not tell the reader to install "
                     f"(add it to {reader.sources}): " + " | ".join(found[:5]))
    return lines


# --------------------------------------------------------------------------- rewrite


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rewrite(command: str, ports: dict[int, int]) -> str:
    """The one rewrite between a page and a test: loopback host, free ports."""
    command = re.sub(r"(?<![\d.])0\.0\.0\.0(?![\d.])", HOST, command)
    for public, private in ports.items():
        command = re.sub(rf"(?<![\d.]){public}(?!\d)", str(private), command)
    if UNIX_SOCKET in command and 8000 in ports:
        command = command.replace(UNIX_SOCKET, unix_socket(ports))
    return command


#: The Unix socket a page binds; a test binds a private one instead, named after its free port.
UNIX_SOCKET = "/run/gunicorn.sock"


def unix_socket(ports: dict[int, int]) -> str:
    """The private path that replaces ``/run/gunicorn.sock`` for a server started with ``ports``."""
    return f"/tmp/hb-{os.getpid()}-{ports[8000]}.sock"


def port_map(*extra: int) -> dict[int, int]:
    return {p: free_port() for p in (*PUBLIC_PORTS, *extra)}


# --------------------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the test process dies, so nothing outlives a crash; and
    start with the signal dispositions of a reader's shell. An ignored signal is inherited
    across exec: a suite started under ``nohup`` would give every server an ignored SIGHUP
    (Daphne would then survive the SIGHUP that ends it in a terminal)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
                signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_MKDOCS_2_WARNING"] = "1"
    env[SERVER_MARK_VAR] = os.environ.get(RUN_ID_VAR, "adhoc")
    for var in list(env):  # only what the snippet itself sets may configure the server
        if var in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "PORT") or (
            var.startswith("UVICORN_")
        ):
            env.pop(var)
    env.update(extra or {})
    return env


def group_members(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def kill_group(pgid: int) -> list[str]:
    """SIGKILL every process of a group; return what was still alive."""
    alive = [f"{p.pid} {' '.join(_cmdline(p))}" for p in group_members(pgid)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    _LIVE_GROUPS.discard(pgid)
    return alive


def kill_all_groups() -> None:
    for pgid in list(_LIVE_GROUPS):
        kill_group(pgid)


def _cmdline(proc: psutil.Process) -> list[str]:
    with contextlib.suppress(psutil.Error):
        return proc.cmdline()
    return ["?"]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (for failure messages)."""
    return _tail(path, lines)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return "(no log)"
    text = path.read_text("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"


def spawn(command: str, cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start ``bash -c command`` in its own process group, with exactly ``env``, its output in
    ``log_path``; the group is killed at the end of the session at the latest. For a command
    that is not a page's snippet (the README's); a page's command goes through :func:`start`.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    _LIVE_GROUPS.add(proc.pid)
    return proc


# --------------------------------------------------------------------------- commands


@dataclass
class Result:
    command: str
    returncode: int
    output: str


def run(
    snip: Snippet | str,
    *,
    ports: dict[int, int] | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
    check: bool = True,
    server: Server | None = None,
    log_dir: Path | None = None,
    requirements: list[str | Path] | None = None,
) -> Result:
    """Run a command snippet to completion (bounded), with the documented rewrite, in its
    page's reader environment (or one built from ``requirements``)."""
    snip = snippet(snip) if isinstance(snip, str) else snip
    reader = reader_env_of(snip, requirements)
    ports = ports if ports is not None else (server.ports if server else {})
    command = rewrite(command_of(snip), ports)
    _skip_if_not_applicable(command, snip, reader)
    cwd = cwd or snip.folder
    log_dir = log_dir or (server.log_path.parent if server else Path("/tmp/handbook-logs"))
    log_path = log_dir / f"cmd-{snip.path.stem}-{os.getpid()}-{time.monotonic_ns()}.log"
    if server is not None and "XDG_RUNTIME_DIR" in server.env:
        env = {"XDG_RUNTIME_DIR": server.env["XDG_RUNTIME_DIR"], **(env or {})}
    proc = spawn(command, cwd, base_env({**(reader.env() if reader else {}), **(env or {})}),
                  log_path)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        raise HarnessError(
            _report(snip, command, cwd, f"did not finish within {timeout}s", None, log_path,
                    server, reader)
        ) from None
    kill_group(proc.pid)
    output = log_path.read_text("utf-8", errors="replace")
    if check and rc != 0:
        raise HarnessError(_report(snip, command, cwd, "failed", rc, log_path, server, reader))
    return Result(command=command, returncode=rc, output=output)


def _report(
    snip: Snippet | None,
    command: str,
    cwd: Path,
    what: str,
    rc: int | None,
    log_path: Path,
    server: Server | None,
    reader: ReaderEnv | None = None,
) -> str:
    source = snip.rel if snip else "(inline test command)"
    lines = [
        f"{source}: command {what}",
        f"  command as run: {command}",
        f"  working directory: {cwd.relative_to(ROOT) if cwd.is_relative_to(ROOT) else cwd}",
        f"  exit code: {'still running' if rc is None else rc}",
        *_missing_report(reader, log_path),
        f"  --- last {LOG_TAIL_LINES} lines of its output ({log_path}) ---",
        _indent(_tail(log_path)),
    ]
    if server is not None:
        lines += [
            f"  --- last {LOG_TAIL_LINES} lines of the server log ({server.snippet.rel}) ---",
            _indent(_tail(server.log_path)),
        ]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + ln for ln in text.splitlines())


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    snippet: Snippet
    command: str
    cwd: Path
    ports: dict[int, int]
    log_path: Path
    proc: subprocess.Popen
    env: dict[str, str]
    scheme: str = "http"
    verify: str | bool = True
    stopped: bool = field(default=False)
    #: The public port served when the command itself names none (it is in a config file).
    public_port: int | None = None
    #: The page's reader environment the command runs in (None: the tests' own environment).
    reader: ReaderEnv | None = None

    # ---- addressing
    @property
    def port(self) -> int:
        """The free port that replaced the page's first public port used by the command."""
        if self.public_port is not None:
            return self.ports[self.public_port]
        for private in self.ports.values():
            if re.search(rf"(?<!\d){private}(?!\d)", self.command):
                return private
        raise HarnessError(f"{self.snippet.rel}: the command uses none of the ports {PUBLIC_PORTS}")

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{HOST}:{self.port}{path}"

    def client(self, **kwargs) -> httpx.Client:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("verify", self.verify)
        return http_client(base_url=self.url(""), **kwargs)

    def get(self, path: str = "/", **kwargs) -> httpx.Response:
        """One GET on its own connection (a new client each time, so any worker may take it)."""
        with self.client() as c:
            return c.get(path, **kwargs)

    # ---- observing
    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def fail(self, what: str) -> HarnessError:
        rc = self.proc.poll()
        return HarnessError(
            _report(
                self.snippet, self.command, self.cwd, what, rc, self.log_path, None, self.reader
            )
        )

    def processes(self) -> list[psutil.Process]:
        return group_members(self.proc.pid)

    def main_process(self) -> psutil.Process:
        """The server process the command started (a container runtime's PID 1).

        ``bash -c`` execs a lone command, so usually that is the group leader; when a
        snippet sets variables first, bash stays and the server is its only child.
        """
        proc = psutil.Process(self.proc.pid)
        while proc.name() in ("bash", "sh"):
            children = proc.children()
            if len(children) != 1:
                raise self.fail(
                    f"cannot tell the server process from {len(children)} children of the shell"
                )
            proc = children[0]
        return proc

    def workers(self) -> list[psutil.Process]:
        """Worker processes: the children of the main process that serve requests."""
        main = self.main_process()
        return [p for p in main.children() if not _is_helper(p)]

    def wait_for_workers(self, count: int, timeout: float = 30) -> list[psutil.Process]:
        """Wait until exactly ``count`` workers run and each has logged that it is ready.

        Waiting for readiness matters: Gunicorn 27's asgi worker ignores a SIGTERM that
        arrives while it boots, and its master then waits the whole graceful timeout.
        """
        seen: dict[str, object] = {}

        def all_ready() -> list[psutil.Process] | None:
            seen["found"], seen["ready"] = self.workers(), self.ready_worker_pids()
            found = seen["found"]
            if len(found) == count and all(p.pid in seen["ready"] for p in found):
                return found
            return None

        return wait_until(
            all_ready, what=f"{count} worker processes run and are ready", timeout=timeout,
            interval=0.1, server=self,
            describe=lambda: f"workers {[p.pid for p in seen['found']]}, "
                             f"of which ready: {sorted(seen['ready'])}")

    def ready_worker_pids(self) -> set[int]:
        """PIDs of workers whose log says they are ready to serve."""
        log = self.log()
        kind = re.search(r"Using worker: (\S+)", log)
        pattern = READY_PATTERNS.get(kind[1] if kind else "uvicorn", READY_PATTERNS["*"])
        return {int(m["pid"]) for m in re.finditer(pattern, log)}

    def wait_for_log(self, pattern: str, timeout: float = 20, start: int = 0) -> re.Match:
        return wait_until(
            lambda: re.search(pattern, self.log()[start:]), what=f"its log matches {pattern!r}",
            timeout=timeout, server=self, describe=lambda: "(the log tail below)")

    # ---- life
    def wait_ready(
        self,
        path: str = "/",
        timeout: float = 30,
        ok: Callable[[httpx.Response], bool] = lambda r: r.status_code < 500,
    ) -> httpx.Response:
        last = ["no answer yet"]

        def answered() -> httpx.Response | None:
            try:
                with http_client(verify=self.verify, timeout=2) as c:
                    r = c.get(self.url(path))
            except httpx.HTTPError as exc:
                last[0] = f"{type(exc).__name__}: {exc}"
                return None
            last[0] = f"HTTP {r.status_code}"
            return r if ok(r) else None

        return wait_until(answered, what=f"it answers {self.url(path)}", timeout=timeout,
                          interval=0.1, server=self, describe=lambda: last[0])

    def send_signal(self, sig: int) -> None:
        os.kill(self.main_process().pid, sig)

    def stop(
        self, timeout: float = 40, expect_clean: bool = True, sig: int = signal.SIGTERM
    ) -> int:
        """SIGTERM the server process, wait (bounded) for its whole group, then SIGKILL the group.

        With ``expect_clean``, fail unless it exited 0 on its own and left no process behind.
        """
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            with contextlib.suppress(psutil.Error, HarnessError):
                os.kill(self.main_process().pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.proc.poll() is None or self.processes()):
            time.sleep(0.05)
        rc = self.proc.poll()
        leftovers = kill_group(self.proc.pid)
        if rc is None:
            rc = self.proc.wait(timeout=5)
            if expect_clean:
                raise self.fail(
                    f"did not exit within {timeout}s of {signal.Signals(sig).name}; killed"
                )
        runtime = self.env.get("XDG_RUNTIME_DIR", "")
        if runtime.startswith("/tmp/hb-run-"):
            shutil.rmtree(runtime, ignore_errors=True)
        if expect_clean and leftovers:
            raise self.fail(f"left processes behind after exiting: {leftovers}")
        if expect_clean and rc != 0:
            raise self.fail(f"exited with code {rc} after {signal.Signals(sig).name}")
        return rc


#: How a worker says it is ready, by Gunicorn worker class ("uvicorn" is uvicorn --workers).
READY_PATTERNS = {
    "asgi": r"\[(?P<pid>\d+)\] \[INFO\] ASGI server listening",
    "uvicorn_worker.UvicornWorker": r"\[(?P<pid>\d+)\] \[INFO\] Application startup complete",
    "uvicorn_worker.UvicornH11Worker": r"\[(?P<pid>\d+)\] \[INFO\] Application startup complete",
    "uvicorn.workers.UvicornWorker": r"\[(?P<pid>\d+)\] \[INFO\] Application startup complete",
    "uvicorn": r"Started server process \[(?P<pid>\d+)\]",
    "*": r"Booting worker with pid: (?P<pid>\d+)",
}


def _is_helper(proc: psutil.Process) -> bool:
    """Processes a server starts that are not request-serving workers."""
    cmd = " ".join(_cmdline(proc))
    # Python's multiprocessing resource tracker is started by uvicorn --workers.
    return "resource_tracker" in cmd or "semaphore_tracker" in cmd


def start(
    snip: Snippet | str,
    *,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    ports: dict[int, int] | None = None,
    scheme: str = "http",
    verify: str | bool = True,
    public_port: int | None = None,
    requirements: list[str | Path] | None = None,
    nice: int | None = None,
) -> Server:
    """Start the server a command snippet shows, in its own process group, in its page's
    reader environment (or one built from ``requirements``). Not yet waited for.

    ``nice`` raises (negative) the CPU priority of the server and the workers it starts, for a
    command whose start-up must beat a fixed deadline that a test machine shared by parallel
    test runs would miss (``fastapi run``'s 5 s worker health check, which it cannot raise).
    Needs root; without it the priority stays as it is.
    """
    snip = snippet(snip) if isinstance(snip, str) else snip
    reader = reader_env_of(snip, requirements)
    ports = ports or port_map()
    command = rewrite(command_of(snip), ports)
    _skip_if_not_applicable(command, snip, reader)
    cwd = cwd or snip.folder
    log_path = log_dir / f"server-{snip.path.stem}-{time.monotonic_ns()}.log"
    env = dict(env or {})
    if "XDG_RUNTIME_DIR" not in env:
        # Gunicorn (25.1+) puts its control socket in $XDG_RUNTIME_DIR; one dir per server
        # keeps servers that run in parallel from taking over each other's socket.
        # Short path under /tmp: a Unix socket path must fit in 108 bytes.
        env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="hb-run-", dir="/tmp")
    proc = spawn(command, cwd, base_env({**(reader.env() if reader else {}), **env}), log_path)
    if nice is not None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
    return Server(snip, command, cwd, ports, log_path, proc, env, scheme=scheme, verify=verify,
                  public_port=public_port, reader=reader)


@contextlib.contextmanager
def serving(
    snip: Snippet | str,
    *,
    log_dir: Path,
    ready_path: str | None = "/",
    ready_timeout: float = 30,
    expect_clean: bool = True,
    **kwargs,
) -> Iterator[Server]:
    """Start a server, wait until it answers, yield it, and always stop its whole group."""
    server = start(snip, log_dir=log_dir, **kwargs)
    try:
        if ready_path is not None:
            server.wait_ready(ready_path, timeout=ready_timeout)
        yield server
    except BaseException:
        server.stop(expect_clean=False)
        raise
    else:
        server.stop(expect_clean=expect_clean)
    finally:
        kill_group(server.proc.pid)



# --------------------------------------------------------------------------- waiting


def wait_until(
    condition: Callable[[], object],
    *,
    what: str,
    timeout: float = 30,
    interval: float = 0.05,
    server: Server | None = None,
    describe: Callable[[], str] | None = None,
) -> object:
    """Poll ``condition`` until it returns something truthy, and return that.

    Bounded: after ``timeout`` seconds it fails with ``what`` and what it last saw
    (``describe()``, or the condition's last value); with ``server``, the failure carries
    the server's command and log tail, and a server that exits stops the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        exited = server is not None and server.proc.poll() is not None
        late = time.monotonic() > deadline
        if exited or late:  # described only now: most waits never fail
            seen = describe() if describe else repr(value)
        if exited:
            raise server.fail(f"exited while waiting until {what} (last seen: {seen})")
        if late:
            message = f"waited {timeout}s until {what}; last seen: {seen}"
            raise server.fail(message) if server is not None else HarnessError(message)
        time.sleep(interval)


def observe_for(seconds: float, why: str) -> None:
    """Let ``seconds`` pass on purpose: a window in which something must NOT happen (a worker
    exiting, a signal acted on, a cancelled call finishing), long enough for ``why``. The one
    fixed wait a test may make; to wait FOR something, use :func:`wait_until`."""
    assert why, "say what the window is long enough for"
    time.sleep(seconds)


# --------------------------------------------------------------------------- raw clients


@functools.cache
def _trust(verify: str | bool) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if verify is True:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=str(verify))


def trust(verify: str | bool | ssl.SSLContext = True) -> ssl.SSLContext | bool:
    """What an HTTPS client trusts, as an SSL context made once per process for each
    ``verify`` (True: the CA bundle; a path: that CA file; False: nothing is checked).
    Building a context loads the CA bundle, about 50 ms of CPU: more than a request to a
    local server, and tests make thousands of clients."""
    return verify if isinstance(verify, ssl.SSLContext) else _trust(verify)


def http_client(**kwargs) -> httpx.Client:
    """An ``httpx.Client`` with ``kwargs``, its ``verify`` turned into a shared context
    (:func:`trust`)."""
    kwargs["verify"] = trust(kwargs.get("verify", True))
    return httpx.Client(**kwargs)


def http_get(url: str, *, verify: str | bool | ssl.SSLContext = True, timeout: float = 30,
             **kwargs) -> httpx.Response:
    """GET ``url`` on a connection of its own (a new client, closed after the answer)."""
    with http_client(verify=verify, timeout=timeout) as c:
        return c.get(url, **kwargs)


def http_post(url: str, *, verify: str | bool | ssl.SSLContext = True, timeout: float = 30,
              **kwargs) -> httpx.Response:
    """POST to ``url`` on a connection of its own."""
    with http_client(verify=verify, timeout=timeout) as c:
        return c.post(url, **kwargs)



class HalfSentRequest:
    """A request whose headers are only partly sent: what a slow client, or any request that
    is still arriving, looks like to a server.

    ``finish()`` sends the rest and says what came back: ``"answered"`` (an HTTP status line)
    or ``"closed unanswered"`` (the server closed the connection, cleanly or with a reset).
    """

    def __init__(self, server: Server, path: str = "/") -> None:
        self.server = server
        self.sock = socket.create_connection((HOST, server.port), timeout=30)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        self.client_port = self.sock.getsockname()[1]

    def holder(self) -> int | None:
        """The PID of the worker that accepted this connection, once one has."""
        for proc in self.server.workers():
            with contextlib.suppress(psutil.Error):
                for conn in proc.net_connections(kind="tcp"):
                    if conn.raddr and conn.raddr.port == self.client_port:
                        return proc.pid
        return None

    def wait_accepted(self, timeout: float = 30) -> int:
        """Wait until a worker holds the connection; return that worker's PID."""
        return wait_until(self.holder, what=f"a worker accepts the connection from port "
                          f"{self.client_port}", timeout=timeout, server=self.server)

    def finish(self) -> str:
        try:
            self.sock.sendall(b"Connection: close\r\n\r\n")
            data = self.sock.recv(64)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        finally:
            self.sock.close()
        return "answered" if data.startswith(b"HTTP/1.1 ") else "closed unanswered"


def timed_outcome(server: Server, path: str, timeout: float = 30) -> tuple[object, float]:
    """One GET on its own connection (``Connection: close``), and how long it took: the
    outcome is (status code, JSON body or text) or, when no response came, the exception's
    class name ("ReadTimeout", "RemoteProtocolError"...). For a request that may fail."""
    start = time.monotonic()
    try:
        with server.client(timeout=timeout, headers={"Connection": "close"}) as client:
            r = client.get(path)
        json_body = r.headers.get("content-type", "").startswith("application/json")
        outcome: object = (r.status_code, r.json() if json_body else r.text)
    except httpx.HTTPError as exc:
        outcome = type(exc).__name__
    return outcome, time.monotonic() - start


@dataclass
class Held:
    """Half-sent requests, one held by each of a set of workers: what
    :func:`hold_one_connection_per_worker` returns. Iterating gives the held requests; ``held[pid]``
    the one that worker holds."""

    by_worker: dict[int, HalfSentRequest]
    #: Connections that reached a worker already holding one; still open, unanswered.
    extras: list[HalfSentRequest]

    def __iter__(self) -> Iterator[HalfSentRequest]:
        return iter(self.by_worker.values())

    def __getitem__(self, pid: int) -> HalfSentRequest:
        return self.by_worker[pid]

    def finish_extras(self) -> list[str]:
        """Send the rest of every extra request; what each got (see ``HalfSentRequest.finish``)."""
        outcomes = [half.finish() for half in self.extras]
        self.extras = []
        return outcomes

    def close_extras(self) -> None:
        """Close every extra connection unfinished: no request reaches the app, so none
        counts towards a worker's ``--max-requests``."""
        for half in self.extras:
            half.sock.close()
        self.extras = []

    def close(self) -> None:
        """Close every connection, held or extra, finished or not (safe to call again)."""
        for half in [*self.by_worker.values(), *self.extras]:
            half.sock.close()


def hold_one_connection_per_worker(server: Server, workers: set[int],
                                   timeout: float = 60) -> Held:
    """Open half-sent requests until each of ``workers`` has accepted one, and return them.

    The kernel hands each new connection to whichever worker accepts first, so it may take more
    connections than workers: the extras stay open (``Held.extras``) until the caller finishes
    or closes them. Use it to have a request certainly "still arriving" at each worker when a
    reload, a recycle or a shutdown starts."""
    by_worker: dict[int, HalfSentRequest] = {}
    extras: list[HalfSentRequest] = []

    def one_more() -> bool:
        half = HalfSentRequest(server)
        pid = half.wait_accepted()
        if pid in by_worker:
            extras.append(half)
        else:
            by_worker[pid] = half
        return set(by_worker) == set(workers)

    wait_until(one_more, what="each worker holds a half-sent request", timeout=timeout,
               interval=0, server=server, describe=lambda: f"held by {sorted(by_worker)}")
    return Held(by_worker, extras)


def shared_dir(tmp_path_factory) -> Path:
    """A folder every test process of this run shares (pytest-xdist gives each its own)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory, name: str, compute: Callable[[Path], object]):
    """``compute(folder)`` run once per test run, whichever test process asks first.

    The others wait on a lock file and get the same (pickled) result. A failure is recorded
    and raised again, with its message, in every process that asks, so each test names the
    same cause. (pytest-xdist's ``xdist_group`` does not group tests with pytest 9.2.)
    """
    import pickle

    shared = shared_dir(tmp_path_factory)
    result, failed = shared / f"{name}.pickle", shared / f"{name}.failed"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists() and not failed.exists():
            try:
                value = compute(tmp_path_factory.mktemp(name))
            except BaseException as exc:  # recorded for the other processes, then raised here
                failed.write_text(f"{type(exc).__name__}: {exc}")
                raise
            result.write_bytes(pickle.dumps(value))
    if failed.exists():
        raise HarnessError(f"{name} (computed once for the run) failed: {failed.read_text()}")
    return pickle.loads(result.read_bytes())


def in_background(fn: Callable, *args) -> tuple[threading.Thread, dict]:
    """Call ``fn(*args)`` in a daemon thread; its return value lands in ``box["result"]``."""
    box: dict = {}

    def target() -> None:
        box["result"] = fn(*args)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


# --------------------------------------------------------------------------- OS packages


def ensure_debian_packages(binary: str, packages: list[str], timeout: float = 600) -> str:
    """Return the path of ``binary``, installing Debian ``packages`` first if it is missing.

    The README's test command must be the only command a fresh machine needs, so tools that
    come from the OS (Chromium for the browser test, wrk for benchmarks) are installed here:
    with apt-get as root, or ``sudo -n apt-get`` otherwise. Serialised with a lock file, so
    parallel test processes do not run apt at once. Fails with a clear message if impossible.
    """
    import fcntl
    import shutil

    found = shutil.which(binary)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    with open("/tmp/handbook-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = shutil.which(binary)
        if found:
            return found
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            [*sudo, "apt-get", "update", "-qq"],
            [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise HarnessError(
                    f"cannot install {packages} for {binary!r}: {' '.join(cmd)}: {exc}"
                ) from None
            if r.returncode != 0:
                raise HarnessError(
                    f"cannot install {packages} for {binary!r}: {' '.join(cmd)} "
                    f"exited {r.returncode}\n"
                    + _indent("\n".join((r.stdout + r.stderr).splitlines()[-20:]))
                )
    found = shutil.which(binary)
    if not found:
        raise HarnessError(f"installed {packages}, but {binary!r} is still not on PATH")
    return found


# --------------------------------------------------------------------------- nginx


NGINX = "/usr/sbin/nginx"  # Debian's path; /usr/sbin is often not on a normal user's PATH
#: The main configuration Debian ships, reduced to what a user-level nginx needs: everything it
#: writes (pid, logs, temporary files) stays in its own folder. The page's file is included in
#: ``http``, as Debian's nginx.conf includes /etc/nginx/conf.d/*.conf. Started by root, nginx
#: would run its workers as ``nobody``, who cannot write in the test's folder: they keep our user.
NGINX_MAIN_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
{includes}
}}
"""


@dataclass
class Nginx:
    """A user-level nginx serving a page's configuration; see :func:`nginx`."""

    prefix: Path
    conf: Path
    ports: dict[int, int]  # nginx's own: 80 and 443 -> free ports
    proc: subprocess.Popen | None = None

    def url(self, path: str = "/", tls: bool = True) -> str:
        return f"https://{HOST}:{self.ports[443]}{path}" if tls else f"http://{HOST}:{self.ports[80]}{path}"

    def client(self, **kwargs) -> httpx.Client:
        """A client for nginx's HTTPS port that trusts the page's self-signed certificate."""
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("verify", self.tls_context())
        return http_client(base_url=self.url(""), **kwargs)

    def tls_context(self) -> ssl.SSLContext:
        """Trusts the self-signed certificate the page's command made in nginx's folder."""
        return trust(str(self.prefix / "tls" / "cert.pem"))

    def log(self) -> str:
        """nginx's error log (the output of its process is in nginx.out)."""
        path = self.prefix / "error.log"
        return path.read_text("utf-8", errors="replace") if path.exists() else ""

    def check(self) -> Result:
        """``nginx -t`` on the configuration; fails with nginx's own message."""
        command = f"{NGINX} -t -p {self.prefix} -c {self.conf} -e {self.prefix}/error.log"
        r = subprocess.run(
            command.split(), capture_output=True, text=True, timeout=60, env=base_env()
        )
        result = Result(command, r.returncode, r.stdout + r.stderr)
        if r.returncode != 0:
            raise HarnessError(f"{command}: exit code {r.returncode}\n{_indent(result.output)}\n"
                               f"  --- the configuration as tested ({self.conf}) ---\n"
                               + _indent(self.conf.read_text()))
        return result

    def fail(self, what: str) -> HarnessError:
        rc = self.proc.poll() if self.proc else None
        return HarnessError(f"nginx ({self.conf}): {what}\n  exit code: "
                            f"{'still running' if rc is None else rc}\n  --- error log ---\n"
                            + _indent(_tail(self.prefix / "error.log"))
                            + "\n  --- output ---\n" + _indent(_tail(self.prefix / "nginx.out")))


def nginx_config(refs: list[str], upstream: dict[int, int] | None, prefix: Path,
                 test_only: dict[str, str] | None = None) -> Nginx:
    """Write the page's nginx configuration into ``prefix``, with the nginx rewrite.

    The rewrite, like :func:`rewrite` for commands: ``listen 80`` and ``listen 443`` become
    127.0.0.1 and free ports, and the upstream ``server 127.0.0.1:8000`` or
    ``unix:/run/gunicorn.sock`` becomes the app server's private port or socket
    (``upstream``: that server's port map). Nothing else changes, unless a test asks for a
    ``test_only`` replacement (``old -> new`` text, e.g. a 60 s timeout shortened to 2 s so a
    test need not wait a minute); each ``old`` must occur in the configuration, or it fails.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(exist_ok=True)
    ports = {80: free_port(), 443: free_port()}
    includes, found = [], set()
    for i, ref in enumerate(refs):
        text = snippet(ref).text
        for public, private in ports.items():
            text = re.sub(rf"\blisten\s+{public}\b", f"listen {HOST}:{private}", text)
        if upstream is not None:
            text = re.sub(
                r"\bserver\s+127\.0\.0\.1:8000\b", f"server {HOST}:{upstream[8000]}", text
            )
            text = text.replace(f"unix:{UNIX_SOCKET}", f"unix:{unix_socket(upstream)}")
        for old, new in (test_only or {}).items():
            found.update({old} if old in text else set())
            text = text.replace(old, new)
        path = prefix / f"{i}-{Path(ref.partition(':')[0]).name}"  # nginx names it in errors
        path.write_text(text)
        includes.append(f"    include {path};")
    if missing := set(test_only or {}) - found:
        raise HarnessError(f"{refs}: the test-only rewrite expects {sorted(missing)} in them")
    conf = prefix / "nginx.conf"
    import pwd

    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_MAIN_CONF.format(user=user, prefix=prefix, includes="\n".join(includes)))
    return Nginx(prefix=prefix, conf=conf, ports=ports)


@contextlib.contextmanager
def nginx(refs: list[str], *, log_dir: Path, upstream: dict[int, int] | None = None,
          certificate: str | None = "proxy/certificate.sh",
          test_only: dict[str, str] | None = None) -> Iterator[Nginx]:
    """Run nginx in front of an app server, as a user-level process, and always stop it.

    ``refs``: the page's configuration snippets, included in this order; ``upstream``: the
    app server's port map (``server.ports``); ``test_only``: see :func:`nginx_config`. The
    certificate command the page shows runs first in nginx's folder. nginx runs in the
    foreground (``daemon off``) in its own process group, marked and swept like every server;
    on exit it gets SIGQUIT (graceful), then its group SIGKILL.
    """
    ensure_debian_packages(NGINX, ["nginx"])
    site = nginx_config(refs, upstream, Path(tempfile.mkdtemp(prefix="nginx-", dir=log_dir)),
                        test_only)
    if certificate:
        run(certificate, cwd=site.prefix, log_dir=site.prefix)
    site.check()
    command = (
        f"exec {NGINX} -p {site.prefix} -c {site.conf} -e {site.prefix}/error.log -g 'daemon off;'"
    )
    site.proc = spawn(command, site.prefix, base_env(), site.prefix / "nginx.out")
    # The HTTPS port, or port 80 for a configuration that listens only on plain HTTP.
    text = "".join(p.read_text() for p in site.prefix.glob("[0-9]*-*") if p.is_file())
    port = site.ports[443] if f"listen {HOST}:{site.ports[443]}" in text else site.ports[80]
    try:
        def listening() -> bool:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                return True
            if site.proc.poll() is not None:
                raise site.fail("exited before listening")
            return False

        wait_until(listening, what=f"nginx listens on {port}", timeout=30,
                   describe=lambda: _tail(site.prefix / "error.log", 5))
        yield site
    finally:
        if site.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(site.proc.pid, signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                site.proc.wait(timeout=15)
        kill_group(site.proc.pid)
