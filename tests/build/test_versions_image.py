"""Two model versions baked into one image on a real engine: tritonclient asks each, the unversioned URL stays
model.version (though 2 is higher), and `mlgit smoke` sends each version its own sample."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from mlgit import render
from mlgit.build.run import Published, start_container, wait_ready
from mlgit.config.load import load_project
from tests.build.fixtures import mlgit, mlgit_ok
from tests.conftest import free_port
from tests.onnx_models import write_linear_model

pytestmark = pytest.mark.integration


def _add_version_2(repo: Path) -> dict[str, Any]:
    """model/v2: the linear model "retrained" (weights doubled), with its own sample; returns that sample."""
    (repo / "model" / "v2").mkdir()
    write_linear_model(repo / "model" / "v2" / "model.onnx", scale=2.0)
    sample = json.loads((repo / "model" / "sample.json").read_text())
    for output in sample["expected_outputs"]:
        output["data"] = [2 * value for value in output["data"]]
    (repo / "model" / "v2" / "sample.json").write_text(json.dumps(sample))
    config = repo / "mlgit.yaml"
    versions = "  versions: [{version: '2', path: model/v2/model.onnx, sample: {path: model/v2/sample.json}}]\n"
    config.write_text(config.read_text().replace("model:\n", "model:\n" + versions, 1))
    render.render(load_project(repo, warn=False))
    return sample


def _infer(port: int, sample: dict[str, Any], version: str = "") -> np.ndarray:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    (tensor,) = sample["inputs"]
    item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
    item.set_data_from_numpy(np.array(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
    result = client.infer("linear", [item], model_version=version)
    client.close()
    return result.as_numpy("y")


def test_one_image_serves_two_versions(docker_client: Any, cpu_runtime_image: str, model_repo: Path) -> None:
    sample_2 = _add_version_2(model_repo)
    project = load_project(model_repo, warn=False)
    reference = f"mlgit-test/linear-versions:{uuid.uuid4().hex[:12]}"
    mlgit_ok("build", model_repo, "--runtime-image", cpu_runtime_image, "--tag", reference)
    port = free_port()
    container = start_container(docker_client, reference, project.config, Published("127.0.0.1", port))
    try:
        wait_ready(container, f"http://127.0.0.1:{port}", timeout=120)
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        assert client.get_model_metadata("linear")["versions"] == ["1", "2"]
        client.close()
        (expected_1,) = project.sample["expected_outputs"]
        (expected_2,) = sample_2["expected_outputs"]
        np.testing.assert_allclose(_infer(port, project.sample, "1").ravel(), expected_1["data"], rtol=1e-4)
        np.testing.assert_allclose(_infer(port, project.sample, "2").ravel(), expected_2["data"], rtol=1e-4)
        np.testing.assert_allclose(_infer(port, project.sample).ravel(), expected_1["data"], rtol=1e-4)

        checked = mlgit("smoke", model_repo, "--url", f"http://127.0.0.1:{port}", "--timeout", "60")
        assert checked.returncode == 0, checked.stderr
        assert "version 2 answered its sample too" in " ".join(checked.stdout.split())
        # A version whose sample disagrees with what the image holds fails the check, naming it.
        sample_2["expected_outputs"][0]["data"] = expected_1["data"]
        (model_repo / "model" / "v2" / "sample.json").write_text(json.dumps(sample_2))
        wrong = mlgit("smoke", model_repo, "--url", f"http://127.0.0.1:{port}", "--timeout", "60")
        assert wrong.returncode == 1
        assert "version 2 of linear answered its sample differently than expected" in " ".join(wrong.stderr.split())
    finally:
        container.remove(force=True)
        docker_client.images.remove(reference, force=True)
