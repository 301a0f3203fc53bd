"""The model image running in a real pod: a kubelet and containerd on this machine (tests/cluster/kubelet.sh).

Everywhere else in tests/cluster the nodes are kwok's: a pod is Ready because a kwok stage says so, and a
port-forward lands wherever the test serves the model. Here nothing is played: the iris example is built
with `mlgit build --push` into the local registry, deployed with `mlgit deploy` onto the node
mlgit-kubelet-0 (a toleration and a node selector in mlgit.yaml: the node is tainted so that no other
test's pod lands there), containerd pulls the image by digest, the kubelet starts it and marks it Ready
from the image's own readiness probe, and the smoke check's port-forward goes API server -> kubelet ->
containerd -> the pod's network namespace. The test then checks, each from the side that did it:

- the pod runs on the real node with an address on its pod bridge; the node's own containerd holds the image
  by digest (pulled from the local registry) and runs the container as a task;
- the kubelet's prober ran the pod's readiness probe and it succeeded (the kubelet's /metrics/probes);
- the smoke check's request reached this pod: the runtime's own request counter (its /metrics, read through
  the API server's pod proxy) counted it before the test sent anything;
- `kubectl logs` (API server -> kubelet -> the container's log file) shows the runtime's JSON log;
- the Service's endpoints are the pod: inference through the API server's service proxy answers the sample;
- `mlgit destroy` ends with the pod really gone (the kubelet stopped the container).

It runs only where MLGIT_TEST_WITH_KUBELET=1 (tests/run.sh sets it under CI): the kubelet changes host
settings while it runs. When this machine cannot run a kubelet (not root, no containerd or CNI plugins,
cgroup v2, a kubelet not built), the test is skipped saying why (failed under CI, where tests/run.sh provides
all of it).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.build.fixtures import mlgit_ok
from tests.cluster.conftest import update_config
from tests.cluster.kube import Kube, wait_for
from tests.fixtures_integration import unavailable

pytestmark = pytest.mark.integration

KUBELET_SH = Path(__file__).with_name("kubelet.sh")
OPT_IN = "MLGIT_TEST_WITH_KUBELET"
# One real node per machine (kubelet.sh's state, bridge and cgroups are fixed): test runs take turns.
LOCK = Path("/run/mlgit-kubelet.lock")
LOCK_WAIT_SECONDS = 300
UNAVAILABLE = 3  # kubelet.sh's exit status for "this machine cannot run a kubelet"
POD_CIDR = ipaddress.ip_network(os.environ.get("MLGIT_KUBELET_POD_CIDR", "10.244.0.0/24"))


@dataclass(frozen=True)
class RealNode:
    name: str
    taint_key: str
    taint_value: str
    taint_effect: str
    label: tuple[str, str]
    logs: Path
    containerd: Path
    """The socket of the node's own containerd."""


def _script(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(KUBELET_SH), command], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@pytest.fixture(scope="module")
def machine_lock() -> Iterator[None]:
    """This machine's real node, for this module alone: another test run's module waits its turn."""
    if os.environ.get(OPT_IN) != "1":
        pytest.skip(
            f"a real kubelet changes this machine's settings while it runs (sysctls, iptables chains, a bridge): "
            f"set {OPT_IN}=1 where that is fine (tests/run.sh does under CI)"
        )
    with LOCK.open("a") as handle:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    unavailable(
                        f"another test run has held this machine's real node ({LOCK}) for {LOCK_WAIT_SECONDS} s"
                    )
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def real_node(machine_lock: None, kube: Kube, cluster_kubeconfig: Path) -> Iterator[RealNode]:
    """A kubelet and containerd of kubelet.sh registered with the cluster as a Ready node, for this module's
    tests; stopped afterwards (unless it was running before). It is not built here: a cold build takes longer
    than a test may (tests/run.sh builds it first; MLGIT_KUBELET_NO_BUILD makes a missing one exit 3)."""
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster_kubeconfig),
        "MLGIT_TEST_KUBECTL": kube.kubectl,
        "MLGIT_KUBELET_NO_BUILD": "1",
    }
    started = _script("up", env, timeout=300)
    if started.returncode == UNAVAILABLE:
        unavailable(f"no real node on this machine: {_tail(started.stderr, 3)}")
    if started.returncode != 0:
        _script("down", env, timeout=300)
        pytest.fail(f"tests/cluster/kubelet.sh up failed (exit {started.returncode}):\n{_tail(started.stderr)}")
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    key, _, rest = values["MLGIT_TEST_REAL_NODE_TAINT"].partition("=")
    taint_value, _, effect = rest.partition(":")
    label_key, _, label_value = values["MLGIT_TEST_REAL_NODE_LABEL"].partition("=")
    try:
        yield RealNode(
            values["MLGIT_TEST_REAL_NODE"], key, taint_value, effect, (label_key, label_value),
            Path(values["MLGIT_TEST_REAL_NODE_LOGS"]), Path(values["MLGIT_TEST_REAL_NODE_CONTAINERD"]),
        )  # fmt: skip
    finally:
        if "already running" not in started.stderr:
            stopped = _script("down", env, timeout=300)
            assert stopped.returncode == 0, f"kubelet.sh down failed:\n{_tail(stopped.stderr)}"


@pytest.fixture
def repo(tmp_path: Path, name: str, local_registry: str, real_node: RealNode, kube: Kube) -> Iterator[Path]:
    """The iris example under this test's name, pushed to the local registry, placed on the real node."""
    target = tmp_path / "repo"
    mlgit_ok("init", "--example", "iris-classifier", "--name", name, "--registry", f"{local_registry}/mlgit-real-node",
          target)  # fmt: skip
    toleration = {"key": real_node.taint_key, "operator": "Equal", "value": real_node.taint_value,
                  "effect": real_node.taint_effect}  # fmt: skip
    update_config(
        target,
        {
            # The example names its GitLab agent's context; here the cluster is the kubeconfig's current one.
            "environments": {"dev": {"kube_context": None}},
            "serving": {"tolerations": [toleration], "node_selector": dict([real_node.label])},
        },
    )
    yield target
    kube.run("delete", "namespace", f"{name}-dev", "--wait=false", "--ignore-not-found")


@pytest.fixture
def image_ref(repo: Path, cpu_runtime_image: str, docker_client: Any) -> Iterator[str]:
    """`mlgit build --push`: the model image in the local registry, by digest (containerd pulls it there).
    dockerd's copy goes afterwards (the registry keeps its own, as for the other image tests)."""
    built = mlgit_ok("build", repo, "--runtime-image", cpu_runtime_image, "--tag", "1.0.0", "--push").strip()
    assert "@sha256:" in built, built
    yield built
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):  # by id: its tag and digest reference both
        docker_client.images.remove(docker_client.images.get(built).id, force=True)


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus text metric's samples whose labels include `labels` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        found = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if not found:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(found.group(2))
    return total


def _only_pod(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    pods = [
        p for p in kube.list("pod", namespace, f"mlgit.dev/model={name}") if not p["metadata"].get("deletionTimestamp")
    ]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_the_model_image_runs_in_a_real_pod_and_answers_the_smoke_check(
    name: str, repo: Path, image_ref: str, real_node: RealNode, kube: Kube, cluster_kubeconfig: Path
) -> None:
    namespace = f"{name}-dev"
    kube.create_namespace(namespace)
    env = {"KUBECONFIG": str(cluster_kubeconfig)}

    deployed = mlgit_ok("deploy", "--env", "dev", "--image", image_ref, "--timeout", "300", repo, env=env)
    assert f"model {name} is ready and answered the sample as expected" in " ".join(deployed.split())

    # The pod: on the real node, from the pulled image, with an address on the node's pod bridge.
    pod = _only_pod(kube, namespace, name)
    pod_name, status = pod["metadata"]["name"], pod["status"]
    assert pod["spec"]["nodeName"] == real_node.name
    assert status["phase"] == "Running"
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    (server,) = status["containerStatuses"]
    assert server["ready"] and server["started"] and server["restartCount"] == 0, server
    assert server["containerID"].startswith("containerd://"), server
    assert ipaddress.ip_address(status["podIP"]) in POD_CIDR, status["podIP"]
    # The node's containerd pulled the image by digest from the local registry and runs the container.
    containerd = ["ctr", "--address", str(real_node.containerd), "--namespace", "k8s.io"]
    images = subprocess.run([*containerd, "images", "ls", "-q"], capture_output=True, text=True, check=True).stdout
    assert image_ref in images.split(), images
    tasks = subprocess.run([*containerd, "tasks", "ls"], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"^{server['containerID'].removeprefix('containerd://')}\s+\d+\s+RUNNING$", tasks, re.M), tasks

    # Ready by its own readiness probe: the kubelet's prober ran it against the pod, and it succeeded.
    probes = kube.run("get", "--raw", f"/api/v1/nodes/{real_node.name}/proxy/metrics/probes").stdout
    for probe in ("Startup", "Readiness"):
        ran = _metric(probes, "prober_probe_total", namespace=namespace, pod=pod_name, probe_type=probe,
                      result="successful")  # fmt: skip
        assert ran >= 1, f"no successful {probe} probe of {pod_name} in the kubelet's metrics:\n{probes}"

    # The smoke check reached this pod: its own counter holds requests that only the smoke check sent.
    def served() -> float:
        proxy = f"/api/v1/namespaces/{namespace}/pods/{pod_name}:9090/proxy/metrics"  # the metrics port
        return _metric(kube.run("get", "--raw", proxy).stdout, "mlgit_inference_requests_total", status="200")

    smoke_requests = served()
    assert smoke_requests >= 1, "the pod counted no inference request: the smoke check answer came from elsewhere"

    # The runtime's log, through the API server and the kubelet: one JSON object per line.
    logs = kube.run("logs", "-n", namespace, pod_name, "-c", "server").stdout
    entries = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(e.get("message") == "model version ready" and e.get("model") == name for e in entries), logs

    # Through the Service: its endpoints are the real pod's address, and it answers the sample. (The API server
    # reaches the pod from this machine; the bridge CNI enforces no NetworkPolicy, a policy-enforcing one would
    # have to admit it.)
    sample = json.loads((repo / "model" / "sample.json").read_text())
    infer = f"/api/v1/namespaces/{namespace}/services/{name}:http/proxy/v2/models/{name}/infer"
    answer = json.loads(
        kube.run("create", "--raw", infer, "-f", "-", stdin=json.dumps({"inputs": sample["inputs"]})).stdout
    )
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    assert outputs["label"] == next(o["data"] for o in sample["expected_outputs"] if o["name"] == "label")
    assert served() == smoke_requests + 1

    # destroy waits for the pod to be gone: the kubelet stopped its container for real.
    mlgit_ok("destroy", "--env", "dev", repo, env=env)
    assert kube.list("pod", namespace, f"mlgit.dev/model={name}") == []
    on_node = ["get", "pods", "-A", "--field-selector", f"spec.nodeName={real_node.name}", "-o", "name"]
    wait_for(f"no pod left on {real_node.name}", lambda: not kube.run(*on_node).stdout.strip(), timeout=60)
