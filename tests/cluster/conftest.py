"""Fixtures for the cluster tests: a real Kubernetes control plane and a model repository per test.

The cluster is the one MLGIT_TEST_KUBECONFIG names: tests/run.sh starts tests/cluster/control-plane.sh
(etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from source, kwok's fake nodes)
and exports it. Fake nodes run no containers: kwok makes their pods Running and Ready (never Ready for
an image containing `never-ready`), forwards every pod port to MLGIT_TEST_POD_ADDRESS, where the
`model_server` fixture runs the model, and serves every pod's log from MLGIT_TEST_POD_LOG. Tests that
rely on those rules skip on another cluster (a kind cluster, say), whose nodes would try to pull the
made-up images; test_real_cluster.py is the group for such a cluster.

Each test gets its own model name, so its namespaces (<name>-dev, ...) are its own; they are deleted
(without waiting) when the test ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from mlgit.main import app
from tests.cluster.kube import Kube, kwok_pod_address, wait_for
from tests.fixtures_integration import unavailable

DIGEST = "sha256:" + "1" * 64
DIGEST2 = "sha256:" + "2" * 64
REGISTRY = "registry.example.com"
HOW_TO_RUN = (
    "`bash tests/cluster/control-plane.sh up` builds and starts one (needs Go) and prints "
    "KUBECONFIG=<path>: export MLGIT_TEST_KUBECONFIG=<path> (or point it at any cluster, e.g. kind)"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster_kubeconfig() -> Path:
    """The kubeconfig of a real cluster that answers (its current context)."""
    path = os.environ.get("MLGIT_TEST_KUBECONFIG")
    if not path:
        unavailable(f"no Kubernetes cluster: MLGIT_TEST_KUBECONFIG is not set; {HOW_TO_RUN}")
    if not Path(path).is_file():
        unavailable(f"MLGIT_TEST_KUBECONFIG={path} is not a file; {HOW_TO_RUN}")
    return Path(path)


@pytest.fixture(scope="session")
def kube(cluster_kubeconfig: Path, kubectl: str) -> Kube:
    admin = Kube(kubectl, cluster_kubeconfig)
    ready = admin.run("get", "--raw", "/readyz", check=False)
    if ready.returncode != 0:
        unavailable(f"the cluster in {cluster_kubeconfig} does not answer: {ready.stderr.strip()}; {HOW_TO_RUN}")
    return admin


@pytest.fixture(scope="session")
def kwok(kube: Kube) -> tuple[str, int]:
    """The address kwok forwards pod ports to; skips on a cluster without tests/cluster/control-plane.sh's rules."""
    address = kwok_pod_address()
    if address is None:
        unavailable(
            "these tests deploy made-up images that only fake nodes can run: they need the control plane of "
            f"tests/cluster/control-plane.sh (MLGIT_TEST_POD_ADDRESS); {HOW_TO_RUN}"
        )
    return address


@pytest.fixture
def name() -> str:
    """A model name of this test's own, so that its namespaces are too."""
    return f"m{uuid.uuid4().hex[:7]}"


def image(name: str, digest: str = DIGEST, marker: str = "") -> str:
    """A digest-pinned reference; kwok never makes a pod of an image containing `never-ready` Ready."""
    return f"{REGISTRY}/{name}{marker}@{digest}"


@pytest.fixture
def model_repo(tmp_path: Path, linear_onnx: Path, name: str, kube: Kube, kwok: tuple[str, int]) -> Iterator[Path]:
    """`mlgit init --model` of the linear model under this test's name; its namespaces go afterwards."""
    from mlgit.scaffold import InitOptions, init_repository

    repo = init_repository(InitOptions(target=tmp_path / "repo", name=name, model=linear_onnx))
    yield repo
    namespaces = kube.run("get", "namespaces", "-o", "name").stdout.split()
    mine = [ns for ns in namespaces if ns.startswith(f"namespace/{name}-")]
    if mine:
        kube.run("delete", *mine, "--wait=false", "--ignore-not-found")


@pytest.fixture
def namespace(model_repo: Path, name: str, kube: Kube) -> str:
    """The dev environment's namespace, existing (dev does not set create_namespace)."""
    kube.create_namespace(f"{name}-dev")
    return f"{name}-dev"


@pytest.fixture
def mlgit(model_repo: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `mlgit ARGS... MODEL_REPO` in-process against the cluster; stdout and stderr come back apart."""
    monkeypatch.setenv("KUBECONFIG", str(cluster_kubeconfig))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [*args, str(model_repo)], catch_exceptions=False)

    return invoke


def update_config(repo: Path, changes: dict[str, Any]) -> None:
    """Merge `changes` into mlgit.yaml (a None value removes the key) and render, as a user's edit would."""
    from mlgit import render
    from mlgit.config.load import load_project
    from mlgit.config.yamlio import dump_yaml, read_yaml

    def merge(into: Any, over: dict[str, Any]) -> None:
        for key, value in over.items():
            if value is None:
                into.pop(key, None)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    path = repo / "mlgit.yaml"
    document = read_yaml(path)
    merge(document, changes)
    path.write_text(dump_yaml(document), encoding="utf-8")
    render.render(load_project(repo, warn=False))


def serve_model(repo: Path, address: tuple[str, int]) -> Iterator[subprocess.Popen[bytes]]:
    """`mlgit serve` of a repository at `address` until the block ends (where kwok forwards pod ports)."""
    host, port = address
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will; TIME_WAIT is fine
        try:
            probe.bind(address)
        except OSError as exc:  # another server there would answer the smoke check in this one's place
            raise AssertionError(f"{host}:{port}, where kwok forwards pod ports, is taken: {exc}") from None
    command = [sys.executable, "-m", "mlgit", "serve", str(repo), "--host", host, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = f"http://{host}:{port}/v2/health/ready"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        wait_for(
            f"mlgit serve on {host}:{port}",
            lambda: server.poll() is not None or _answers(opener, ready),
            timeout=60,
        )
        if server.poll() is not None:
            raise AssertionError(f"mlgit serve exited: {server.stderr.read().decode() if server.stderr else ''}")
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _answers(opener: urllib.request.OpenerDirector, url: str) -> bool:
    try:
        with opener.open(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def model_server(model_repo: Path, kwok: tuple[str, int]) -> Iterator[subprocess.Popen[bytes]]:
    """The model, served where kwok sends every port-forward: the smoke check's answer comes from it."""
    yield from serve_model(model_repo, kwok)


def write_kubeconfig(path: Path, contexts: dict[str, dict], current: str | None) -> Path:
    """A kubeconfig with one context per (cluster, user) pair given as kubeconfig `cluster`/`user` dicts."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"c{i}", "cluster": c["cluster"]} for i, c in enumerate(contexts.values())],
        "users": [{"name": f"u{i}", "user": c["user"]} for i, c in enumerate(contexts.values())],
        "contexts": [
            {"name": name, "context": {"cluster": f"c{i}", "user": f"u{i}"}} for i, name in enumerate(contexts)
        ],
    }
    if current is not None:
        document["current-context"] = current
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def admin_context(cluster_kubeconfig: Path) -> dict:
    """The cluster and user of the admin kubeconfig's current context, to put into another kubeconfig."""
    config = yaml.safe_load(cluster_kubeconfig.read_text())
    current = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == current["cluster"])["cluster"]
    user = next(u for u in config["users"] if u["name"] == current["user"])["user"]
    return {"cluster": cluster, "user": user}


def flat(text: str) -> str:
    """Output with rich's line wrapping undone, for substring assertions."""
    return " ".join(text.split())
