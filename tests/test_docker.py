"""docs/docker.md: every Dockerfile is linted, built for real with Podman, and run.

The images are built from ``snippets/docker/`` with ``podman build`` (``tests/containers.py``
holds the machinery: the engine, the stand-in base images, builds and containers). Each
Dockerfile is built once per test run and shared by every test process; every container a test
starts is removed when the test ends, and every image the run built at the end of the session.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from dockerfile_parse import DockerfileParser

import containers
import harness

APP = harness.snippet("docker/main.py")
PYPROJECT = harness.snippet("docker/pyproject.toml")
LOCK = harness.snippet("docker/uv.lock")
DOCKERIGNORE = harness.snippet("docker/.dockerignore")
SINGLE_STAGE = harness.snippet("docker/Dockerfile.single-stage")
SIZES = harness.snippet("docker/image_sizes.json")
#: The first test to ask for the images builds them (and, on a fresh machine, installs Podman
#: and makes the stand-in base images): minutes, not the suite's default bound for one test.
pytestmark = pytest.mark.timeout(1200)
CONTEXT = APP.folder  # `docker build .` runs in the folder that holds the app
#: Every Dockerfile the page recommends, and how many worker processes its CMD starts.
DOCKERFILES = {
    "docker/Dockerfile": 2,  # Gunicorn + uvicorn-worker, WEB_CONCURRENCY=2
    "docker/Dockerfile.uvicorn": 2,  # uvicorn --workers, WEB_CONCURRENCY=2
    "docker/Dockerfile.asgi": 2,  # Gunicorn's asgi worker, WEB_CONCURRENCY=2
    "docker/Dockerfile.k8s": 0,  # one uvicorn process, no workers
}
SHELL_FORM = "docker/Dockerfile.shell-form"
#: What each server logs when it handles SIGTERM and shuts down in order.
SIGTERM_LOGS = {
    "docker/Dockerfile": ["Handling signal: term", "Shutting down: Master"],
    "docker/Dockerfile.asgi": ["Handling signal: term", "Shutting down: Master"],
    "docker/Dockerfile.uvicorn": ["Terminated child process", "Application shutdown complete"],
    "docker/Dockerfile.k8s": ["Shutting down", "Application shutdown complete"],
}
HADOLINT = Path(sys.executable).parent / "hadolint"
PYTHON_BIN = Path(sys.base_prefix) / "bin"
STOP_TIMEOUT = 3  # seconds `podman stop` waits before SIGKILL in the shell-form test


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, containers.Build]:
    """Every Dockerfile of the page, built once per test run (shared by the test processes)."""
    names = [Path(ref).name for ref in [*DOCKERFILES, SHELL_FORM]]
    built = containers.shared_builds(tmp_path_factory, CONTEXT, names)
    return {f"docker/{name}": b for name, b in built.items()}


def structure(ref: str) -> list[dict]:
    """The Dockerfile's instructions, parsed by dockerfile-parse (comments dropped)."""
    with harness.snippet(ref).path.open("rb") as f:
        parsed = DockerfileParser(fileobj=f)
        return [i for i in parsed.structure if i["instruction"] != "COMMENT"]


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


def exposed_port(image: containers.Build) -> int:
    (port,) = image.config["ExposedPorts"]
    return int(port.split("/")[0])


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


def test_lock_is_up_to_date_with_pyproject(tmp_path: Path) -> None:
    """The lock command leaves uv.lock unchanged: it is exactly what pyproject.toml resolves to."""
    work = tmp_path
    for snip in (PYPROJECT, LOCK):
        shutil.copy(snip.path, work / snip.path.name)
    harness.run("docker/lock.sh", cwd=work, env={
        "PATH": f"{Path(harness.uv_binary()).parent}:{PYTHON_BIN}:/usr/bin:/bin",
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
def test_locked_install_refuses_a_lock_that_does_not_match(change: str, tmp_path: Path) -> None:
    """The build's `uv sync --locked` fails on a stale lock and on a file whose hash differs."""
    work = tmp_path
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
    env = harness.base_env(
        {
            "PATH": f"{Path(harness.uv_binary()).parent}:{PYTHON_BIN}:/usr/bin:/bin",
            "UV_PYTHON_DOWNLOADS": "never",
        }
    )
    r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and expected in " ".join(r.stderr.split()), r.stderr


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




# --------------------------------------------------------------------------- the image


def test_image_user_exists_with_the_ids_of_user_instruction(images) -> None:
    """USER 10001:10001 is the account the RUN line creates; uv stays in the build stage; the
    code and the virtual environment belong to root, and that user cannot write to them."""
    image = images["docker/Dockerfile"]
    assert image.config["User"] == "10001:10001"
    ids = image.run("sh", "-c", "id -u; id -g; getent passwd app; command -v uv || echo no-uv")
    uid, gid, entry, uv = ids.stdout.split()
    assert (uid, gid) == ("10001", "10001")
    assert entry.split(":")[2:4] == ["10001", "10001"] and entry.split(":")[5] == "/nonexistent"
    assert uv == "no-uv"
    assert image.run("test", "-x", "/app/.venv/bin/gunicorn").returncode == 0
    # COPY left the code and the environment to root: the server's user cannot change them.
    owners = image.run("stat", "-c", "%u", "/app/main.py", "/app/.venv",
                       "/app/.venv/lib/python3.12/site-packages").stdout.split()
    assert owners == ["0", "0", "0"], owners
    write = image.run("sh", "-c", "touch /app/main.py /app/.venv/probe 2>&1; echo $?").stdout
    assert write.strip().endswith("1") and "Permission denied" in write, write


def test_useradd_system_gives_another_group(images) -> None:
    """Why the Dockerfile runs groupadd: `useradd --system --user-group` picks a system GID."""
    base = containers.Build(containers.PYTHON_IMAGE, "")
    out = base.run("sh", "-c", "useradd --system --no-log-init --uid 10001 --user-group "
                   "--no-create-home app && id -g app").stdout
    assert int(out) != 10001 and int(out) < 1000, out


def test_build_context_holds_only_what_the_image_needs(images, tmp_path: Path) -> None:
    """.dockerignore keeps secrets, virtual environments, .git and local files out of the build:
    a `COPY . /context` sees only the three files, and the image built from a folder full of
    such files is the very image built from the clean folder (same ID)."""
    project = tmp_path / "project"
    shutil.copytree(CONTEXT, project)
    for planted in (".env", ".git/config", ".venv/bin/python", "__pycache__/main.cpython-312.pyc",
                    "notes/secret.txt", "tests/test_main.py", "id_rsa"):
        (project / planted).parent.mkdir(parents=True, exist_ok=True)
        (project / planted).write_text("must not reach the image\n")
    assert (project / ".dockerignore").read_text() == DOCKERIGNORE.path.read_text()
    probe = tmp_path / "Dockerfile.probe"
    probe.write_text(f"FROM {containers.PYTHON_IMAGE}\nCOPY . /context/\n")
    seen = containers.build(probe, project, containers.new_tag("context-probe"))
    listed = seen.run("find", "/context", "-mindepth", "1").stdout.split()
    assert sorted(listed) == ["/context/main.py", "/context/pyproject.toml", "/context/uv.lock"]
    again = containers.build(project / "Dockerfile", project, containers.new_tag("planted"))
    assert again.id == images["docker/Dockerfile"].id
    assert "Using cache" in again.output


def test_code_change_reuses_the_dependency_layer_and_a_lock_change_does_not(
        images, tmp_path: Path) -> None:
    """Rebuilt after a change to main.py, the `uv sync` step comes from the cache; after a
    change to uv.lock it runs again, and its downloads come from the cache mount."""
    project = tmp_path / "project"
    shutil.copytree(CONTEXT, project)
    (project / "main.py").write_text(APP.path.read_text() + "\n# a code change\n")
    code = containers.build(project / "Dockerfile", project, containers.new_tag("code-change"))
    assert sync_step(code.output).startswith("--> Using cache"), sync_step(code.output)
    assert code.id != images["docker/Dockerfile"].id
    (project / "uv.lock").write_text(LOCK.path.read_text() + "# a lock change\n")
    lock = containers.build(project / "Dockerfile", project, containers.new_tag("lock-change"))
    step = sync_step(lock.output)
    assert "Using cache" not in step and "Installed" in step, step
    assert "Downloading" not in step, "the cache mount holds every package already"


def sync_step(output: str) -> str:
    """What the build printed for the `RUN ... uv sync` step, up to the next step."""
    m = re.search(r"^\[1/2\] STEP \d+/\d+: RUN .*uv sync.*?(?=^\[\d/2\] STEP|\Z)", output,
                  re.M | re.S)
    assert m, output[-3000:]
    return m[0].split("\n", 1)[1].strip()


def test_build_mounts_and_cache_leave_nothing_in_the_image(images) -> None:
    """The cache mount and the tests' certificate and uv.toml mounts leave no file behind."""
    image = images["docker/Dockerfile"]
    found = image.run("sh", "-c", "ls -A /root; ls /etc/uv 2>/dev/null; "
                      "sha256sum /etc/ssl/certs/ca-certificates.crt").stdout
    base = containers.Build(containers.PYTHON_IMAGE, "").run(
        "sha256sum", "/etc/ssl/certs/ca-certificates.crt").stdout
    assert found.strip() == base.strip(), found
    layers = " ".join(layer["CreatedBy"] for layer in image.history())
    assert "uv sync" not in layers, "the uv sync layer belongs to the build stage only"


def test_image_sizes_on_the_page_are_measured(images, tmp_path: Path) -> None:
    """The sizes on the page are this build's: the final image, its dependency layer (the
    copied virtual environment), and the same app built in one stage, which keeps uv."""
    image = images["docker/Dockerfile"]
    single = containers.build(SINGLE_STAGE.path, CONTEXT, containers.new_tag("single-stage"))
    (venv,) = [layer for layer in image.history() if "COPY dir:" in layer["CreatedBy"]]
    measured = {
        "base image (stand-in)": containers.Build(containers.PYTHON_IMAGE, "").size(),
        "multi-stage image": image.size(),
        "dependency layer (/app/.venv)": int(venv["size"]),
        "single-stage image": single.size(),
    }
    assert measured["single-stage image"] > measured["multi-stage image"]
    uv_image = f"{containers.UV_IMAGE}:{containers.uv_version(CONTEXT / 'Dockerfile')}"
    uv_size = containers.Build(uv_image, "").size()
    saved = measured["single-stage image"] - measured["multi-stage image"]
    assert saved >= 0.9 * uv_size, (saved, uv_size)
    mb = {name: round(size / 1e6) for name, size in measured.items()}
    if os.environ.get("HANDBOOK_WRITE_IMAGE_SIZES"):
        SIZES.path.write_text(json.dumps(mb, indent=2) + "\n")
        for lang in SIZE_LABELS:
            size_table_path(lang).write_text(size_table(mb, lang))
    committed = json.loads(SIZES.path.read_text())
    off = {k: (committed.get(k), v) for k, v in mb.items()
           if abs((committed.get(k) or 0) - v) > max(2, 0.05 * v)}
    assert not off, (f"{SIZES.rel} differs from this build (committed, measured MB): {off}; "
                     "rewrite it with HANDBOOK_WRITE_IMAGE_SIZES=1 pytest tests/test_docker.py "
                     "-k sizes")
    for lang in SIZE_LABELS:
        assert size_table_path(lang).read_text() == size_table(committed, lang), lang


#: The size table's wording in each language (the numbers come from image_sizes.json).
SIZE_LABELS = {
    "en": ("what", "size (MB)", {
        "base image (stand-in)": "base image `python:3.12-slim-bookworm` (the tests' stand-in)",
        "multi-stage image": "the image of `Dockerfile` (two stages)",
        "dependency layer (/app/.venv)": "its dependency layer (`/app/.venv`)",
        "single-stage image": "the same app in one stage (`Dockerfile.single-stage`)"}),
    "vi": ("thành phần", "kích thước (MB)", {
        "base image (stand-in)": "base image `python:3.12-slim-bookworm` (bản thay thế của test)",
        "multi-stage image": "image của `Dockerfile` (hai stage)",
        "dependency layer (/app/.venv)": "layer dependency của nó (`/app/.venv`)",
        "single-stage image": "cùng ứng dụng, một stage (`Dockerfile.single-stage`)"}),
    "zh": ("内容", "大小（MB）", {
        "base image (stand-in)": "基础镜像 `python:3.12-slim-bookworm`（测试用的替身）",
        "multi-stage image": "`Dockerfile` 的镜像（两个阶段）",
        "dependency layer (/app/.venv)": "其中的依赖层（`/app/.venv`）",
        "single-stage image": "同一应用的单阶段构建（`Dockerfile.single-stage`）"}),
}


SIZE_TABLES = {"en": "docker/image_sizes.md", "vi": "docker/image_sizes.vi.md",
               "zh": "docker/image_sizes.zh.md"}


def size_table_path(lang: str) -> Path:
    return harness.SNIPPETS / SIZE_TABLES[lang]


def size_table(mb: dict[str, int], lang: str) -> str:
    what, size, labels = SIZE_LABELS[lang]
    rows = [f"| {labels[k]} | {v} |" for k, v in mb.items()]
    return "\n".join([f"| {what} | {size} |", "|---|---:|", *rows]) + "\n"


# --------------------------------------------------------------------------- running images


def server_workers(procs: list[dict]) -> list[dict]:
    """The server's workers: PID 1's children, minus multiprocessing's resource tracker."""
    return [p for p in procs if p["ppid"] == 1
            and not any("resource_tracker" in a for a in p["args"])]


def is_cmd(process: dict, cmd: list[str]) -> bool:
    """The process runs the exec-form CMD itself (a Python script: its interpreter first)."""
    args = process["args"]
    if args[:1] == ["/app/.venv/bin/python"]:
        args = args[1:]
    return (Path(args[0]).name == cmd[0] and args[1:] == cmd[1:]
            and process["comm"] == cmd[0][:15])


@pytest.mark.parametrize(("ref", "workers"), [pytest.param(r, n, id=Path(r).name)
                                              for r, n in DOCKERFILES.items()])
def test_image_serves_on_its_exposed_port_as_non_root(images, ref: str, workers: int) -> None:
    """The image answers on its EXPOSEd port published to 127.0.0.1, runs as its non-root USER
    with the server as PID 1 (exec form), its health check passes and fails while the server
    is frozen, and `podman stop` ends it gracefully: SIGTERM handled, exit code 0."""
    image = images[ref]
    port = exposed_port(image)
    with containers.running(image.tag, port=port) as c:
        assert c.get("/").status_code == 200 and c.get("/readyz").status_code == 200
        procs = c.processes()
        pid1 = next(p for p in procs if p["pid"] == 1)
        assert is_cmd(pid1, image.config["Cmd"]), pid1  # exec form: no shell in between
        assert {(p["uid"], p["gid"]) for p in procs} == {(10001, 10001)}, procs
        assert len(server_workers(procs)) == workers, procs
        if image.config.get("Healthcheck"):
            c.wait_healthy()
            freeze = "import os, signal; os.kill(-1, signal.SIGSTOP)"  # all but PID 1 and itself
            c.exec("python", "-c", freeze)
            try:
                assert not c.healthy()
            finally:
                c.exec("python", "-c", freeze.replace("SIGSTOP", "SIGCONT"))
            c.wait_healthy()
        assert c.stop(timeout=30) == 0
        log = c.logs()
        assert all(line in log for line in SIGTERM_LOGS[ref]), log[-2000:]


def test_shell_form_cmd_never_delivers_sigterm(images) -> None:
    """Shell form: /bin/sh stays PID 1, ignores SIGTERM, Gunicorn never hears it, and the stop
    ends with SIGKILL (exit code 137)."""
    image = images[SHELL_FORM]
    assert image.config["Cmd"][:2] == ["/bin/sh", "-c"]
    with containers.running(image.tag) as c:
        pid1 = next(p for p in c.processes() if p["pid"] == 1)
        assert pid1["comm"] == "sh", pid1
        assert c.stop(timeout=STOP_TIMEOUT) == 137
        log = c.logs()
        assert "Handling signal: term" not in log and "Shutting down: Master" not in log, log


@pytest.mark.parametrize("form", ["exec form", "shell form with exec"])
def test_exec_form_cmd_shuts_down_gracefully(images, form: str) -> None:
    """Exec form (or `exec` in a shell form): Gunicorn is PID 1, gets SIGTERM, exits 0."""
    if form == "exec form":
        image, command = images["docker/Dockerfile"], ()
    else:
        image = images[SHELL_FORM]
        sh, flag, line = image.config["Cmd"]
        command = (sh, flag, "exec " + line)
    with containers.running(image.tag, command=command) as c:
        pid1 = next(p for p in c.processes() if p["pid"] == 1)
        assert pid1["comm"] == "gunicorn", pid1
        # The image answers once one worker is up; stop only when both have started, so that
        # each one's shutdown can be seen (a worker still booting has no lifespan to end).
        harness.wait_until(lambda: c.logs().count("Application startup complete") == 2,
                           what="both workers have started", timeout=90,
                           describe=lambda: c.logs()[-600:])
        assert c.stop(timeout=30) == 0
        log = c.logs()
        assert "Handling signal: term" in log and "Shutting down: Master" in log
        assert log.count("Application shutdown complete") == 2


def test_docker_run_sets_workers_and_stop_timeout(images) -> None:
    """`docker run -e WEB_CONCURRENCY=3`: 3 workers; --stop-timeout outlasts --graceful-timeout."""
    env, ports, options, name = docker_run("docker/run.sh")
    image = images["docker/Dockerfile"]
    assert name == "fastapi-app" and "fastapi-app" in harness.snippet("docker/build.sh").text
    assert set(ports) == {exposed_port(image)}
    cmd = image.config["Cmd"]
    assert int(options["--stop-timeout"]) > int(cmd[cmd.index("--graceful-timeout") + 1])
    flags = [f"--env={k}={v}" for k, v in env.items()]
    with containers.running(image.tag, *flags, "--stop-timeout", options["--stop-timeout"]) as c:
        assert len(server_workers(c.processes())) == 3
        assert c.inspect()["Config"]["StopTimeout"] == int(options["--stop-timeout"])


def test_docker_run_sets_the_uvicorn_port(images) -> None:
    """`-e UVICORN_PORT=8080`: uvicorn listens there, and the health check follows it."""
    env, ports, _, name = docker_run("docker/run_uvicorn.sh")
    assert "-f Dockerfile.uvicorn -t " + name in harness.snippet("docker/build.sh").text
    assert ports == {8080: 8080} and env == {"UVICORN_PORT": "8080"}
    image = images["docker/Dockerfile.uvicorn"]
    with containers.running(image.tag, "--env=UVICORN_PORT=8080", port=8080) as c:
        assert c.get("/").status_code == 200
        c.wait_healthy()


def test_uvicorn_worker_healthcheck_needs_time_on_a_starved_cpu(images) -> None:
    """With a tenth of a CPU, uvicorn's default 5 s worker health check kills workers that are
    still starting, again and again; with the image's 30 s, both workers start and serve."""
    # (On a loaded machine the 30 s may still lose a worker once; it does not loop.)
    image = images["docker/Dockerfile.uvicorn"]
    cmd = image.config["Cmd"]
    at = cmd.index("--timeout-worker-healthcheck")
    default = (*cmd[:at], *cmd[at + 2:])
    with containers.running(image.tag, "--cpus=0.1", command=default, wait=None) as c:
        harness.wait_until(lambda: c.logs().count("] died") >= 3, what="3 workers killed",
                           timeout=240, interval=1, describe=lambda: c.logs()[-1500:])
    with containers.running(image.tag, "--cpus=0.1", wait="/", wait_timeout=240) as c:
        harness.wait_until(lambda: c.logs().count("Application startup complete") == 2,
                           what="both workers started", timeout=240, interval=1,
                           describe=lambda: c.logs()[-1500:])
        assert c.get("/").status_code == 200


def test_gunicorn_control_socket_needs_a_writable_home(images) -> None:
    """Without --no-control-socket, Gunicorn logs an error: USER has no writable HOME."""
    image = images["docker/Dockerfile"]
    argv = tuple(a for a in image.config["Cmd"] if a != "--no-control-socket")
    with containers.running(image.tag, command=argv) as c:
        harness.wait_until(lambda: "Control server error" in c.logs(), what="the error is logged",
                           timeout=30, interval=0.3, describe=lambda: c.logs()[-1500:])
        assert re.search(r"\[ERROR\] Control server error: \[Errno 13\] Permission denied: "
                         r"'/nonexistent'", c.logs())
        assert c.get("/").status_code == 200  # it serves anyway


# --------------------------------------------------------------------------- a TLS key


def run_tls() -> tuple[str, str, list[str]]:
    """The TLS run command: its -v mount (host folder under $PWD, container path), and the
    command it runs in the image instead of CMD."""
    words = shlex.split(harness.command_of(harness.snippet("docker/run_tls.sh")).replace(
        "\\\n", " "))
    assert words[:2] == ["docker", "run"], words
    image = words.index("fastapi-app")
    options = words[2:image]
    host, container, mode = options[options.index("-v") + 1].split(":")
    assert host.startswith("$PWD/") and mode == "ro", options
    return host.removeprefix("$PWD/"), container, words[image + 1:]


def key_permissions() -> tuple[int, int, int]:
    """The owner, group and mode that the key_permissions command gives the key."""
    lines = harness.command_of(harness.snippet("docker/key_permissions.sh")).splitlines()
    chown, chmod = (shlex.split(line) for line in lines)
    assert chown[0] == "chown" and chmod[0] == "chmod" and chown[2] == chmod[2] == "tls/key.pem"
    uid, gid = map(int, chown[1].split(":"))
    return uid, gid, int(chmod[1], 8)


def tls_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A tls/ folder as the run command mounts it: key.pem, cert.pem; and the CA to verify."""
    host, _, argv = run_tls()
    folder = tmp_path / host
    ca = containers.tls_files(folder)
    names = {Path(argv[argv.index(flag) + 1]).name for flag in ("--keyfile", "--certfile")}
    assert names == {"key.pem", "cert.pem"}, argv
    return folder, ca


def test_root_only_key_leaves_gunicorn_workers_failing_forever(images, tmp_path: Path) -> None:
    """A key owned by root with mode 0400 cannot be read by the image's user 10001: every
    worker dies at boot with `PermissionError: [Errno 13] Permission denied`, the master
    restarts it, again and again, and nothing is ever served."""
    folder, ca = tls_folder(tmp_path)
    containers.own(folder / "key.pem", 0, 0, 0o400)
    _, mount, argv = run_tls()
    image = images["docker/Dockerfile"]
    with containers.running(image.tag, f"--volume={folder}:{mount}:ro", port=8443,
                            command=tuple(argv), wait=None) as c:
        failures = "PermissionError: [Errno 13] Permission denied"
        harness.wait_until(lambda: c.logs().count(failures) >= 4, what="4 worker boots fail",
                           timeout=180, interval=1, describe=lambda: c.logs()[-1500:])
        log = c.logs()
        assert "ctx.load_cert_chain(certfile, keyfile" in log, log[-3000:]
        assert re.search(r"Worker \(pid:\d+\) exited with code 255", log), log[-3000:]
        assert "Listening at: https://0.0.0.0:8443" in log, log[:2000]
        assert c.running(), "the master stays up and keeps restarting workers"
        assert "Application startup complete" not in log
        with pytest.raises(httpx.HTTPError):  # the socket is open, but no worker ever serves
            c.get("/", verify=ca)


def test_key_readable_by_the_app_group_serves_https(images, tmp_path: Path) -> None:
    """The key owned by root and readable by group 10001 (the image's USER group), mode 0440,
    mounted read-only: the non-root server reads it and serves HTTPS that a client verifies."""
    uid, gid, mode = key_permissions()
    image = images["docker/Dockerfile"]
    assert image.config["User"] == f"10001:{gid}" and uid == 0 and mode & 0o007 == 0
    folder, ca = tls_folder(tmp_path)
    containers.own(folder / "key.pem", uid, gid, mode)
    _, mount, argv = run_tls()
    with containers.running(image.tag, f"--volume={folder}:{mount}:ro", port=8443,
                            command=tuple(argv), wait=None) as c:
        containers.check_serves_https_with_key(c, path="/", ca=ca, key=f"{mount}/key.pem",
                                               owner=(uid, gid), mode=mode)
        assert "Permission denied" not in c.logs()


def test_gunicorn_cmd_args_in_the_dockerfile_loses_to_the_cmd_flags(images, tmp_path: Path) -> None:
    """`ENV GUNICORN_CMD_ARGS` in a Dockerfile built on the image: its --bind loses to the
    --bind of CMD (the server still listens on 8000), its --workers (not in CMD) applies."""
    base = images["docker/Dockerfile"]
    assert "--bind" in base.config["Cmd"] and "--workers" not in base.config["Cmd"]
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base.tag}\nENV GUNICORN_CMD_ARGS=\"--bind=0.0.0.0:9000 --workers=3\"\n")
    derived = containers.build(tmp_path / "Dockerfile", tmp_path, containers.new_tag("cmd-args"))
    with containers.running(derived.tag, port=8000) as c:
        assert c.get("/").status_code == 200
        assert "Listening at: http://0.0.0.0:8000" in c.logs()
        assert "9000" not in c.logs()
        harness.wait_until(lambda: len(server_workers(c.processes())) == 3, what="3 workers",
                           timeout=60, describe=lambda: c.logs()[-1000:])
