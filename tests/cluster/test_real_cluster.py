"""deploy -> infer through the Service -> destroy, on a real Kubernetes cluster.

Runs only when MLGIT_TEST_KUBECONFIG names a kubeconfig (its current context is used) and
MLGIT_TEST_IMAGE names the iris-classifier example's model image, pinned by digest, pullable by that
cluster (`mlgit build` of examples/iris-classifier pushed to a registry the cluster reaches). It deploys
a review app (its namespace is created when missing), so it never touches a configured environment.
The cluster needs no ingress controller or cert-manager: the test reaches the model through the API
server's service proxy, which a NetworkPolicy-enforcing CNI may block (then allow the API server in).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.cluster.client import connect
from mlgit.main import app

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("MLGIT_TEST_KUBECONFIG"), reason="MLGIT_TEST_KUBECONFIG is not set"),
    pytest.mark.skipif(not os.environ.get("MLGIT_TEST_IMAGE"), reason="MLGIT_TEST_IMAGE is not set"),
]


def test_deploy_infer_through_the_service_destroy(
    example_repo: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", os.environ["MLGIT_TEST_KUBECONFIG"])
    repo = example_repo("iris-classifier")
    slug = f"t{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    review = ["--env", "review", "--slug", slug]
    deployed = runner.invoke(
        app, ["deploy", *review, "--image", os.environ["MLGIT_TEST_IMAGE"], "--timeout", "300", str(repo)]
    )
    try:
        assert deployed.exit_code == 0, deployed.output
        assert "answered the sample as expected" in deployed.stdout  # the smoke check, through a port-forward
        sample = json.loads((repo / "model" / "sample.json").read_text())
        cluster = connect(None)
        path = f"/api/v1/namespaces/iris-classifier-review/services/iris-classifier-{slug}:http/proxy"
        answer = cluster.dynamic.request(
            "post", f"{path}/v2/models/iris-classifier/infer", body={"inputs": sample["inputs"]}
        )
        outputs = {o["name"]: o["data"] for o in answer.to_dict()["outputs"]}
        expected = {o["name"]: o["data"] for o in sample["expected_outputs"]}
        assert outputs["label"] == expected["label"]
    finally:
        destroyed = runner.invoke(app, ["destroy", *review, str(repo)])
    assert destroyed.exit_code == 0, destroyed.output
    assert (
        connect(None).list("apps/v1", "Deployment", "iris-classifier-review", f"mlgit.dev/environment=review-{slug}")
        == []
    )
