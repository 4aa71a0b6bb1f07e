"""docs/kubernetes.md: the manifests validate strictly, and agree with the image and the real app.

The image is snippets/docker/Dockerfile.k8s, built for real with Podman (tests/containers.py;
there is no cluster here). Each cross-check below can fail: it compares a value in a manifest
with the built image's config (`podman image inspect`), or with the image running in a container
under the manifest's security context.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

import containers
import harness

#: The first test to ask for the images builds them (and, on a fresh machine, installs Podman
#: and makes the stand-in base images): minutes, not the suite's default bound for one test.
pytestmark = pytest.mark.timeout(1200)
MANIFESTS = ("kubernetes/deployment.yaml", "kubernetes/service.yaml", "kubernetes/hpa.yaml",
             "kubernetes/pdb.yaml")
#: The Deployment that serves HTTPS itself, with the key and certificate of a Secret volume.
TLS = "kubernetes/deployment-tls.yaml"
IMAGE = "docker/Dockerfile.k8s"
#: The oldest Kubernetes release where every field used here is on by default (the preStop
#: sleep action is beta, enabled by default, from 1.30), and the newest schema available.
OLDEST, NEWEST = "1.30.0", kubernetes_validate.latest_version()


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> containers.Build:
    """The image of Dockerfile.k8s, built once per test run (shared with tests/test_docker.py)."""
    context = harness.snippet(IMAGE).folder
    names = ["Dockerfile", "Dockerfile.uvicorn", "Dockerfile.asgi", "Dockerfile.k8s",
             "Dockerfile.shell-form"]
    return containers.shared_builds(tmp_path_factory, context, names)["Dockerfile.k8s"]


def security_context_options(ref: str = "kubernetes/deployment.yaml") -> list[str]:
    """The container's securityContext, as `podman run` options."""
    pod, ctr = pod_spec(ref)["securityContext"], container(ref)["securityContext"]
    options = [f"--user={pod['runAsUser']}:{pod['runAsGroup']}"]
    if ctr.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    options += [f"--cap-drop={c}" for c in ctr["capabilities"]["drop"]]
    if ctr.get("allowPrivilegeEscalation") is False:
        options.append("--security-opt=no-new-privileges")
    mounts = {m["name"]: m["mountPath"] for m in container(ref)["volumeMounts"]}
    for volume in pod_spec(ref)["volumes"]:
        if "emptyDir" in volume:
            size = volume["emptyDir"]["sizeLimit"]
            options.append(f"--tmpfs={mounts[volume['name']]}:rw,size={parse_quantity(size)}")
    return options


def manifest(ref: str) -> dict:
    return yaml.safe_load(harness.snippet(ref).text)


def pod_spec(ref: str = "kubernetes/deployment.yaml") -> dict:
    return manifest(ref)["spec"]["template"]["spec"]


def container(ref: str = "kubernetes/deployment.yaml") -> dict:
    (only,) = pod_spec(ref)["containers"]
    return only


def cmd_option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# --------------------------------------------------------------------------- schemas


def test_validate_command_checks_every_manifest(log_dir: Path) -> None:
    """The page's validate command passes, strictly, for all four manifests."""
    snip = harness.snippet("kubernetes/validate.sh")
    words = harness.command_of(snip).split()
    assert "--strict" in words and words[words.index("--kubernetes-version") + 1] == OLDEST
    assert {w for w in words if w.endswith(".yaml")} == {Path(m).name for m in MANIFESTS}
    result = harness.run(snip, log_dir=log_dir)
    assert result.output.count(" passed for resource ") == len(MANIFESTS), result.output


@pytest.mark.parametrize("version", sorted(
    {v for v in all_versions() if tuple(map(int, v.split("."))) >= (1, 30)}))
@pytest.mark.parametrize("ref", [*MANIFESTS, TLS])
def test_manifest_validates_strictly_on_every_release_from_1_30(ref: str, version: str) -> None:
    kubernetes_validate.validate(manifest(ref), version, strict=True)


def test_strict_validation_catches_an_old_release_and_a_typo() -> None:
    """1.28 has no preStop sleep action; a misspelt field fails strict validation."""
    deployment = manifest("kubernetes/deployment.yaml")
    with pytest.raises(kubernetes_validate.ValidationError, match="'sleep' was unexpected"):
        kubernetes_validate.validate(deployment, "1.28.0", strict=True)
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        kubernetes_validate.validate(typo, NEWEST, strict=True)


# --------------------------------------------------------------------------- cross-checks


def test_ports_agree_between_manifests_dockerfile_and_command(image) -> None:
    """containerPort == the built image's exposed port == uvicorn --port in its CMD; the
    Service targets that port by name."""
    (port,) = container()["ports"]
    assert list(image.config["ExposedPorts"]) == [f"{port['containerPort']}/tcp"]
    assert int(cmd_option(image.config["Cmd"], "--port")) == port["containerPort"]
    assert "command" not in container() and "args" not in container(), "the image's CMD runs"
    (service_port,) = manifest("kubernetes/service.yaml")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]


def test_selectors_and_targets_match_the_pods() -> None:
    """Service and PDB select the pod labels; the HPA scales this Deployment, which sets no
    replica count of its own; a node drain can always evict one pod."""
    deployment, hpa = manifest("kubernetes/deployment.yaml"), manifest("kubernetes/hpa.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifest("kubernetes/service.yaml")["spec"]["selector"].items() <= labels.items()
    pdb = manifest("kubernetes/pdb.yaml")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"], deployment["kind"], deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["maxUnavailable"] >= 1
    assert "minAvailable" not in pdb
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and "cpu" in container()["resources"]["requests"]


def test_grace_period_outlasts_prestop_and_graceful_timeout(image) -> None:
    """terminationGracePeriodSeconds > preStop sleep + uvicorn --timeout-graceful-shutdown."""
    graceful = int(cmd_option(image.config["Cmd"], "--timeout-graceful-shutdown"))
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod_spec()["terminationGracePeriodSeconds"] > pre_stop + graceful


def test_security_context_matches_the_image_user(image) -> None:
    """runAsUser/runAsGroup are the built image's numeric USER; root is refused; /tmp is
    writable."""
    user = image.config["User"]
    assert re.fullmatch(r"\d+:\d+", user), "a numeric USER lets the kubelet check runAsNonRoot"
    uid, gid = map(int, user.split(":"))
    pod, ctr = pod_spec()["securityContext"], container()["securityContext"]
    assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (True, uid, gid)
    assert ctr["allowPrivilegeEscalation"] is False and ctr["capabilities"]["drop"] == ["ALL"]
    assert ctr["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_probes_resources_and_shutdown_on_the_real_server(image) -> None:
    """Run the image under the manifest's security context (its user, read-only root, no
    capabilities, /tmp in memory): every probe path answers 200 on the named port; the
    container runs as many server processes as it requests CPUs; memory has room; SIGTERM
    ends it gracefully well within the grace period."""
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    probes = {kind: container()[kind]["httpGet"]
              for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    (port,) = set(ports.values())
    with containers.running(image.tag, *security_context_options(), port=port) as c:
        for kind, probe in probes.items():
            assert c.get(probe["path"], ports[probe["port"]]).status_code == 200, kind
        assert c.get("/no-such-probe").status_code == 404  # the check can fail
        for _ in range(50):
            c.get("/")
        processes = c.processes()
        assert len(processes) == 1, f"one uvicorn process, no workers: {processes}"
        requests = container()["resources"]["requests"]
        assert float(requests["cpu"]) == len(processes)
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", c.exec("cat", "/proc/1/status").stdout)[1])
        assert parse_quantity(requests["memory"]) >= 2 * rss * 1024, f"RSS {rss // 1024} MiB"
        assert container()["resources"]["limits"]["memory"] == requests["memory"]
        grace = pod_spec()["terminationGracePeriodSeconds"]
        assert c.stop(timeout=grace) == 0  # what the kubelet sends after preStop
        log = c.logs()
        assert "Application shutdown complete" in log and "Finished server process" in log, log


def parse_quantity(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", value)
    return int(m[1]) * units.get(m[2] or "", 1)


def test_requirements_pin_what_the_page_runs() -> None:
    """The page's requirements pin every package with ==; the environment its commands run in
    is built from them alone and holds exactly those versions."""
    harness.check_reader_env("kubernetes", shows=["kubernetes/requirements.txt"])


# --------------------------------------------------------------------------- a TLS Secret


def tls_volume() -> tuple[dict, dict]:
    """The TLS Deployment's Secret volume and its mount."""
    (volume,) = [v for v in pod_spec(TLS)["volumes"] if "secret" in v]
    (mount,) = [m for m in container(TLS)["volumeMounts"] if m["name"] == volume["name"]]
    return volume, mount


def test_tls_deployment_differs_only_in_its_tls_lines() -> None:
    """deployment-tls.yaml is deployment.yaml plus fsGroup, a read-only Secret volume with mode
    0440, the uvicorn TLS options in args, and HTTPS on the port and probes."""
    tls, plain = manifest(TLS), manifest("kubernetes/deployment.yaml")
    volume, mount = tls_volume()
    assert volume["secret"]["defaultMode"] == 0o440 and mount["readOnly"] is True
    pod = tls["spec"]["template"]["spec"]
    assert pod["securityContext"].pop("fsGroup") == pod["securityContext"]["runAsGroup"]
    pod["volumes"].remove(volume)
    ctr = pod["containers"][0]
    ctr["volumeMounts"].remove(mount)
    args = ctr.pop("args")
    for flag, name in (("--ssl-keyfile", "tls.key"), ("--ssl-certfile", "tls.crt")):
        assert cmd_option(args, flag) == f"{mount['mountPath']}/{name}"
    ((port,),) = [ctr["ports"]]
    assert (port["name"], port["containerPort"]) == ("https", int(cmd_option(args, "--port")))
    ctr["ports"] = plain["spec"]["template"]["spec"]["containers"][0]["ports"]
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = ctr[kind]["httpGet"]
        assert (probe.pop("scheme"), probe["port"]) == ("HTTPS", "https")
        probe["port"] = "http"
    assert tls["spec"] == plain["spec"]


def kubelet_layout(folder: Path, uid: int, gid: int, mode: int) -> Path:
    """The Secret's files as the kubelet lays them out: tls.key and tls.crt, each with owner
    ``uid``, group ``gid`` and ``mode``; return the CA that signed the certificate."""
    ca = containers.tls_files(folder, ("tls.key", "tls.crt"))
    for name in ("tls.key", "tls.crt"):
        containers.own(folder / name, uid, gid, mode)
    return ca


def run_tls_deployment(image, folder: Path, *extra: str):
    """The image under the TLS Deployment's security context, its args, the Secret mounted."""
    _, mount = tls_volume()
    port = container(TLS)["ports"][0]["containerPort"]
    return containers.running(
        image.tag, *security_context_options(TLS), *extra,
        f"--volume={folder}:{mount['mountPath']}:ro", port=port,
        command=tuple(container(TLS)["args"]), wait=None)


def test_secret_as_root_fs_group_0440_serves_https(image, tmp_path: Path) -> None:
    """With the Secret's files laid out as the kubelet does for fsGroup and defaultMode 0440
    (owner root, group fsGroup, mode 0440) and the user in that group, the non-root server
    reads the key and serves HTTPS that a client verifies. (The kubelet doing that layout is
    not shown here: there is no cluster.)"""
    volume, mount = tls_volume()
    fs_group = pod_spec(TLS)["securityContext"]["fsGroup"]
    ca = kubelet_layout(tmp_path / "tls", 0, fs_group, volume["secret"]["defaultMode"])
    with run_tls_deployment(image, tmp_path / "tls", f"--group-add={fs_group}") as c:
        containers.check_serves_https_with_key(
            c, path="/healthz", ca=ca, key=f"{mount['mountPath']}/tls.key", owner=(0, fs_group),
            mode=0o440)
        uid = pod_spec(TLS)["securityContext"]["runAsUser"]
        assert c.exec("id", "-u").stdout.strip() == str(uid) != "0"


def test_secret_key_only_root_can_read_stops_the_server(image, tmp_path: Path) -> None:
    """Without fsGroup the key is root's (here mode 0400): the non-root uvicorn cannot read it
    and exits at start with `PermissionError: [Errno 13] Permission denied`."""
    kubelet_layout(tmp_path / "tls", 0, 0, 0o400)
    with run_tls_deployment(image, tmp_path / "tls") as c:
        harness.wait_until(lambda: not c.running(), what="the container exits", timeout=120,
                           interval=0.5, describe=lambda: c.logs()[-1500:])
        log = c.logs()
        assert "PermissionError: [Errno 13] Permission denied" in log, log[-3000:]
        assert c.inspect()["State"]["ExitCode"] != 0
        assert "Application startup complete" not in log


def test_deployment_notes_explain_each_marked_line() -> None:
    """deployment.yaml marks the lines that need a word with (N)! comments; the notes a page
    shows under it (one file per language) explain each of them, in order."""
    marked = re.findall(r"# \((\d+)\)!", harness.snippet("kubernetes/deployment.yaml").text)
    assert marked == [str(n) for n in range(1, len(marked) + 1)], marked
    for notes in ("kubernetes/deployment_notes.md", "kubernetes/deployment_notes.vi.md",
                  "kubernetes/deployment_notes.zh.md"):
        numbers = re.findall(r"^(\d+)\. ", harness.snippet(notes).text, re.M)
        assert numbers == marked, (notes, numbers)
