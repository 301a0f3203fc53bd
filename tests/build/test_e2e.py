"""End to end on a real engine and registry: runtime image -> model image -> push -> pull by digest -> run
as Kubernetes will -> tritonclient answers the sample -> SIGTERM drains; and the failures users meet."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker.errors
import httpx
import pytest
import tritonclient.http as triton

from mlgit.build.run import RUN_AS, Published, start_container, stop_container, wait_ready
from mlgit.config.load import load_project
from mlgit.samples.tensors import OIP_TO_NUMPY, compare_outputs
from tests.build.fixtures import mlgit
from tests.conftest import default_sigint, free_port
from tests.fixtures_integration import registry_manifest_digest

pytestmark = pytest.mark.integration
MODEL_LABEL = "org.mlgit.model=iris-classifier"


def _infer(port: int, sample: dict[str, Any]) -> dict[str, Any]:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    inputs = []
    for tensor in sample["inputs"]:
        item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        item.set_data_from_numpy(OIP_TO_NUMPY[tensor["datatype"]](tensor["data"]).reshape(tensor["shape"]))
        inputs.append(item)
    result = client.infer("iris-classifier", inputs)
    return {t["name"]: result.as_numpy(t["name"]) for t in sample["expected_outputs"]}


def test_push_pull_by_digest_run_read_only_infer_and_drain(
    docker_client: Any, iris_image: str, iris_repo: Path, local_registry: str, cpu_runtime_image: str
) -> None:
    repository, digest = iris_image.split("@")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), iris_image
    assert registry_manifest_digest(local_registry, repository.split("/", 1)[1], digest) == digest
    # Only the three COPY layers sit on top of the runtime: a model change never rebuilds the runtime.
    runtime_layers = docker_client.images.get(cpu_runtime_image).attrs["RootFS"]["Layers"]
    model_layers = docker_client.images.get(iris_image).attrs["RootFS"]["Layers"]
    assert model_layers[: len(runtime_layers)] == runtime_layers and len(model_layers) == len(runtime_layers) + 3

    docker_client.images.remove(iris_image, force=True)  # so the run below uses what the registry serves
    image = docker_client.images.pull(iris_image)
    assert image.attrs["Config"]["Healthcheck"]["Test"][0] in ("CMD", "CMD-SHELL")

    project = load_project(iris_repo)
    port = free_port()
    container = start_container(docker_client, iris_image, project.config, Published("127.0.0.1", port))
    try:
        wait_ready(container, f"http://127.0.0.1:{port}", timeout=120)
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert container.exec_run(["id", "-u"]).output.decode().strip() == RUN_AS.split(":")[0]
        assert container.exec_run(["sh", "-c", "echo x > /models/x"]).exit_code != 0  # read-only root fs
        assert container.exec_run(["sh", "-c", "echo x > /tmp/x"]).exit_code == 0  # the tmpfs

        actual = _infer(port, project.sample)
        sample_cfg = project.config.model.sample
        assert compare_outputs(project.sample["expected_outputs"], actual, sample_cfg.rtol, sample_cfg.atol) == []

        start = time.monotonic()
        assert stop_container(container, project.config.serving.drain_seconds) == 0  # SIGTERM, then a clean exit
        assert time.monotonic() - start < project.config.serving.drain_seconds
        assert "shutting down" in container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_docker_prints_the_url_and_stops_gracefully(
    docker_client: Any, iris_image: str, iris_repo: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlgit", "serve", iris_repo, "--docker", "--image", iris_image, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed once the runtime is ready
        assert url == f"http://127.0.0.1:{port}", proc.stderr.read() if proc.stderr else ""
        metadata = httpx.get(f"{url}/v2/models/iris-classifier", timeout=5, trust_env=False)
        assert metadata.status_code == 200 and metadata.json()["name"] == "iris-classifier"
    finally:
        proc.send_signal(stop_signal)
        try:
            stderr = proc.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:  # never leave it (and its container) running
            proc.kill()
            stderr = proc.communicate()[1]
            for container in docker_client.containers.list(all=True, filters={"label": MODEL_LABEL}):
                container.remove(force=True)
            pytest.fail(f"mlgit serve --docker did not stop within 60 s of {stop_signal.name}:\n{stderr}")
    assert proc.returncode == 0, stderr
    assert re.search(r"stopped after [0-9.]+ s, exit code 0", stderr), stderr
    assert docker_client.containers.list(all=True, filters={"label": MODEL_LABEL}) == []


@pytest.mark.parametrize("builder", ["buildkit", "sdk"])
def test_a_copy_of_a_missing_file_fails_showing_the_step(
    example: Any, base_image: str, builder: str, docker_client: Any
) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):  # a leftover of an earlier run would hide the check
        docker_client.images.remove("mlgit-test/never-built:1", force=True)
    repo = example("iris-classifier")
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('COPY ["model/model.onnx"', 'COPY ["model/renamed.onnx"'))
    result = mlgit(
        "build", repo, "--runtime-image", base_image, "--tag", "mlgit-test/never-built:1",
        env={"DOCKER_BUILDKIT": "0" if builder == "sdk" else "1"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "warning: Dockerfile differs from what mlgit.yaml renders to" in result.stderr
    headline = {
        "buildkit": "failed at step [4/4] COPY [model/renamed.onnx, /models/iris-classifier/1/model.onnx]",
        "sdk": 'failed at Step 5/5 : COPY ["model/renamed.onnx", "/models/iris-classifier/1/model.onnx"]',
    }
    assert headline[builder] in result.stderr, result.stderr
    assert "renamed.onnx" in result.stderr.split("error:", 1)[1]  # the step's own error, after the headline
    assert "mlgit render" in result.stderr and result.stdout == ""
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get("mlgit-test/never-built:1")


def test_a_registry_that_cannot_be_reached_fails_the_push(iris_repo: Path, base_image: str, docker_client: Any) -> None:
    closed = free_port()  # nothing listens there once the probe socket is closed
    reference = f"127.0.0.1:{closed}/mlgit-test/iris-classifier:unreachable"
    result = mlgit("build", iris_repo, "--runtime-image", base_image, "--tag", reference, "--push")
    docker_client.images.remove(reference)  # built, never pushed: only the tag to drop
    assert result.returncode == 1, result.stderr
    assert f"the registry refused the push of {reference}" in result.stderr
    assert "connection refused" in result.stderr and "cannot reach" in result.stderr
    assert result.stdout == ""  # a script capturing the digest gets nothing, and the exit status says why


def test_gpu_runtime_image_builds_and_imports_onnxruntime_gpu(docker_client: Any, gpu_runtime_image: str) -> None:
    check = "import json, onnxruntime as ort; print(json.dumps([ort.get_device(), ort.get_available_providers()]))"
    output = docker_client.containers.run(
        gpu_runtime_image, entrypoint=["python", "-c", check], remove=True, network_mode="none"
    )
    device, providers = json.loads(output)
    assert device == "GPU" and "CUDAExecutionProvider" in providers  # CUDA itself cannot run without a GPU
    packages = docker_client.containers.run(
        gpu_runtime_image, entrypoint=["python", "-m", "pip", "list", "--format=json"], remove=True
    )
    names = {p["name"].lower() for p in json.loads(packages)}
    assert "onnxruntime-gpu" in names and "onnxruntime" not in names  # they share a module: never both
