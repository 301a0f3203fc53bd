"""A model whose weights live in an external data file, end to end on a real engine: init copies the data,
the generated Dockerfile puts it beside the model, the minimal context carries it, the image serves it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlgit.build.run import Published, start_container, wait_ready
from mlgit.config.load import load_project
from mlgit.samples.tensors import compare_outputs, from_oip
from tests.build.fixtures import mlgit_ok
from tests.conftest import free_port
from tests.onnx_models import write_external_data_model

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1200)  # builds the runtime image first when no earlier test did
def test_an_image_of_a_model_with_external_data_serves_it(
    docker_client: Any, cpu_runtime_image: str, tmp_path: Path
) -> None:
    model = write_external_data_model(tmp_path / "export" / "net.onnx", location="weights/net.bin")
    repo = tmp_path / "big-model"
    mlgit_ok("init", repo, "--model", model)
    reference = f"mlgit-test/big-model:{uuid.uuid4().hex[:12]}"
    mlgit_ok("build", repo, "--runtime-image", cpu_runtime_image, "--tag", reference)
    try:
        # The runtime's layers plus four COPY layers: settings, sample, model and its data file.
        runtime_layers = docker_client.images.get(cpu_runtime_image).attrs["RootFS"]["Layers"]
        assert len(docker_client.images.get(reference).attrs["RootFS"]["Layers"]) == len(runtime_layers) + 4
        project = load_project(repo)
        port = free_port()
        container = start_container(docker_client, reference, project.config, Published("127.0.0.1", port))
        try:
            wait_ready(container, f"http://127.0.0.1:{port}", timeout=120)
            listing = container.exec_run(["ls", "/models/big-model/1/weights"]).output.decode().split()
            assert listing == ["net.bin"]
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v2/models/big-model/infer",
                json={"inputs": project.sample["inputs"]},
                timeout=10,
                trust_env=False,
            )
            assert answer.status_code == 200, answer.text
            actual = {t["name"]: from_oip(t) for t in answer.json()["outputs"]}
            sample_cfg = project.config.model.sample
            assert compare_outputs(project.sample["expected_outputs"], actual, sample_cfg.rtol, sample_cfg.atol) == []
        finally:
            container.remove(force=True)
    finally:
        docker_client.images.remove(reference, force=True)
