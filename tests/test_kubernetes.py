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

import containers
import harness
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

#: The first test to ask for the images builds them (and, on a fresh machine, installs Podman
#: and makes the stand-in base images): minutes, not the suite's default bound for one test.
pytestmark = pytest.mark.timeout(1200)
MANIFESTS = ("kubernetes/deployment.yaml", "kubernetes/service.yaml", "kubernetes/hpa.yaml",
             "kubernetes/pdb.yaml")
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


def security_context_options() -> list[str]:
    """The container's securityContext, as `podman run` options."""
    pod, ctr = pod_spec()["securityContext"], container()["securityContext"]
    options = [f"--user={pod['runAsUser']}:{pod['runAsGroup']}"]
    if ctr.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    options += [f"--cap-drop={c}" for c in ctr["capabilities"]["drop"]]
    if ctr.get("allowPrivilegeEscalation") is False:
        options.append("--security-opt=no-new-privileges")
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    for volume in pod_spec()["volumes"]:
        if "emptyDir" in volume:
            size = volume["emptyDir"]["sizeLimit"]
            options.append(f"--tmpfs={mounts[volume['name']]}:rw,size={parse_quantity(size)}")
    return options


def load(ref: str) -> dict:
    return yaml.safe_load(harness.snippet(ref).text)


def pod_spec() -> dict:
    return load("kubernetes/deployment.yaml")["spec"]["template"]["spec"]


def container() -> dict:
    (only,) = pod_spec()["containers"]
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
@pytest.mark.parametrize("ref", MANIFESTS)
def test_manifest_validates_strictly_on_every_release_from_1_30(ref: str, version: str) -> None:
    kubernetes_validate.validate(load(ref), version, strict=True)


def test_strict_validation_catches_an_old_release_and_a_typo() -> None:
    """1.28 has no preStop sleep action; a misspelt field fails strict validation."""
    deployment = load("kubernetes/deployment.yaml")
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
    (service_port,) = load("kubernetes/service.yaml")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]


def test_selectors_and_targets_match_the_pods() -> None:
    """Service and PDB select the pod labels; the HPA scales this Deployment, which sets no
    replica count of its own; a node drain can always evict one pod."""
    deployment, hpa = load("kubernetes/deployment.yaml"), load("kubernetes/hpa.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert load("kubernetes/service.yaml")["spec"]["selector"].items() <= labels.items()
    pdb = load("kubernetes/pdb.yaml")["spec"]
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
