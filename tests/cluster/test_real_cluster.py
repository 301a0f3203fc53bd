"""Inference from a real OIP v2 client (tritonclient) to a deployed model.

On the control plane of tests/cluster/control-plane.sh the path is `kubectl port-forward` -> API server
-> kwok's kubelet endpoint -> the model served by this test (fake nodes run no containers). On a cluster
with real nodes (MLGIT_TEST_KUBECONFIG without MLGIT_TEST_POD_ADDRESS) the second test deploys a real
image (MLGIT_TEST_IMAGE: the iris-classifier example's model image, pinned by digest, pullable by that
cluster) as a review app and infers through the Service, via the API server's service proxy (which a
NetworkPolicy-enforcing CNI may block: then allow the API server in).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
import yaml
from typer.testing import CliRunner

from mlgit.cluster.client import connect
from mlgit.main import app
from mlgit.samples.tensors import OIP_TO_NUMPY, compare_outputs
from mlgit.scaffold import InitOptions, init_repository
from tests.cluster.conftest import flat, image, serve_model
from tests.cluster.kube import Kube


@pytest.fixture
def iris(tmp_path: Path, name: str, kube: Kube) -> Iterator[Path]:
    repo = init_repository(InitOptions(target=tmp_path / "iris", example="iris-classifier", name=name))
    yield repo
    for env in ("dev", "review"):
        kube.run("delete", "namespace", f"{name}-{env}", "--wait=false", "--ignore-not-found")


def _infer(port: int, model: str, sample: dict[str, Any]) -> dict[str, np.ndarray]:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    inputs = []
    for tensor in sample["inputs"]:
        item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        item.set_data_from_numpy(OIP_TO_NUMPY[tensor["datatype"]](tensor["data"]).reshape(tensor["shape"]))
        inputs.append(item)
    result = client.infer(model, inputs)
    return {t["name"]: result.as_numpy(t["name"]) for t in sample["expected_outputs"]}


@pytest.fixture
def port_forward(kube: Kube, name: str) -> Iterator[Any]:
    """Opens `kubectl port-forward` to the dev Deployment on a free local port; yields a function doing so."""
    processes: list[subprocess.Popen[str]] = []

    def open_forward(namespace: str) -> int:
        command = [kube.kubectl, "--kubeconfig", str(kube.kubeconfig), "port-forward", "-n", namespace]
        process = subprocess.Popen([*command, f"deployment/{name}", ":8080"], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8080"
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert found, f"kubectl port-forward said: {line!r}"
        return int(found.group(1))

    yield open_forward
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def test_a_real_oip_client_infers_through_a_port_forward(
    name: str,
    iris: Path,
    kube: Kube,
    kwok: tuple[str, int],
    port_forward: Any,
    cluster_kubeconfig: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster_kubeconfig))
    kube.create_namespace(f"{name}-dev")
    for _ in serve_model(iris, kwok):
        # The example names its GitLab agent's context; here the cluster is the kubeconfig's current one.
        context = yaml.safe_load(cluster_kubeconfig.read_text())["current-context"]
        deploy = ["deploy", "--env", "dev", "--image", image(name), "--context", context, str(iris)]
        deployed = CliRunner().invoke(app, deploy)
        assert deployed.exit_code == 0, deployed.output
        assert "answered the sample as expected" in flat(deployed.stdout)
        sample = json.loads((iris / "model" / "sample.json").read_text())
        actual = _infer(port_forward(f"{name}-dev"), name, sample)
        assert compare_outputs(sample["expected_outputs"], actual, 1e-5, 1e-6) == []


@pytest.mark.skipif(bool(os.environ.get("MLGIT_TEST_POD_ADDRESS")), reason="fake nodes cannot serve through a Service")
@pytest.mark.skipif(
    not os.environ.get("MLGIT_TEST_IMAGE"), reason="MLGIT_TEST_IMAGE (a pullable model image) is not set"
)
def test_deploy_infer_through_the_service_destroy(
    name: str, iris: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster_kubeconfig))
    runner = CliRunner()
    review = ["--env", "review", "--slug", "t1"]
    deployed = runner.invoke(
        app, ["deploy", *review, "--image", os.environ["MLGIT_TEST_IMAGE"], "--timeout", "300", str(iris)]
    )
    try:
        assert deployed.exit_code == 0, deployed.output
        assert "answered the sample as expected" in deployed.stdout  # the smoke check, through a port-forward
        sample = json.loads((iris / "model" / "sample.json").read_text())
        cluster = connect(None)
        path = f"/api/v1/namespaces/{name}-review/services/{name}-t1:http/proxy"
        answer = cluster.dynamic.request("post", f"{path}/v2/models/{name}/infer", body={"inputs": sample["inputs"]})
        outputs = {o["name"]: o["data"] for o in answer.to_dict()["outputs"]}
        expected = {o["name"]: o["data"] for o in sample["expected_outputs"]}
        assert outputs["label"] == expected["label"]
    finally:
        destroyed = runner.invoke(app, ["destroy", *review, str(iris)])
    assert destroyed.exit_code == 0, destroyed.output
    assert connect(None).list("apps/v1", "Deployment", f"{name}-review", "mlgit.dev/environment=review-t1") == []
