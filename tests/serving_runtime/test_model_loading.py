"""Models that cannot become ready say why; GPU models that land on the CPU are refused; versions order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tritonclient.http as triton

from mlgit_serving.errors import RepositoryError
from mlgit_serving.metrics import ServingMetrics
from mlgit_serving.model import OnnxModel
from mlgit_serving.repository import ModelRepository

from .conftest import IRIS_SAMPLE, RunningServer, classifier, start_server, stop_server, write_model

pytestmark = pytest.mark.filterwarnings("ignore:Specified provider .CUDAExecutionProvider.:UserWarning")

CUDA_FIRST = [{"name": "CUDAExecutionProvider", "options": {"device_id": 0}}, {"name": "CPUExecutionProvider"}]


@pytest.fixture(scope="module")
def troubled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("troubled")
    write_model(root, "gpu", {"1": classifier(0.0)}, {"device": "gpu", "providers": CUDA_FIRST})
    write_model(
        root,
        "gpu_fallback",
        {"1": classifier(0.0)},
        {"device": "gpu", "providers": CUDA_FIRST, "allow_cpu_fallback": True},
    )
    write_model(root, "typo", {"1": classifier(0.0)}, {"batchng": {"enabled": True}})
    write_model(
        root, "mismatch", {"1": classifier(0.0)}, {"inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]}
    )
    bad_sample = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}
    write_model(root, "bad_sample", {"1": classifier(0.0)}, {}, bad_sample)
    (root / "empty").mkdir()
    (root / "corrupt" / "1").mkdir(parents=True)
    (root / "corrupt" / "1" / "model.onnx").write_bytes(b"not a model")
    running = start_server(root)
    running.wait_loaded()
    yield running
    stop_server(running)


@pytest.fixture
def http(troubled: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=troubled.url) as client:
        yield client


def test_not_ready_with_every_reason(http: httpx.Client) -> None:
    response = http.get("/v2/health/ready")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    for reason in (
        "model 'gpu' version '1' is failed: device is gpu and ['CUDAExecutionProvider', 'CPUExecutionProvider'] "
        "were requested, but the session runs on ['CPUExecutionProvider']",
        "allow_cpu_fallback",
        "model-settings.json: batchng: Extra inputs are not permitted",
        "input 'input': model-settings.json says FP64, the model says FP32",
        "warm-up with sample.json failed: input 'input': expected shape [-1, 4], got [1, 3]",
        "model 'empty': no <version>/model.onnx",
        "onnxruntime cannot load",
    ):
        assert reason in error
    assert "gpu_fallback" not in error
    assert http.get("/v2/health/live").status_code == 200


def test_gpu_model_on_cpu_is_refused_and_infer_answers_503(troubled: RunningServer, http: httpx.Client) -> None:
    client = triton.InferenceServerClient(url=troubled.address)
    assert not client.is_server_ready()
    assert not client.is_model_ready("gpu")
    metadata = client.get_model_metadata("gpu")
    assert metadata["parameters"]["state"] == "failed"
    assert "allow_cpu_fallback" in metadata["parameters"]["reason"]
    client.close()
    response = http.post("/v2/models/gpu/infer", json=IRIS_SAMPLE)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "is failed: device is gpu" in response.json()["error"]


def test_cpu_fallback_when_allowed_reports_active_providers(troubled: RunningServer, http: httpx.Client) -> None:
    client = triton.InferenceServerClient(url=troubled.address)
    assert client.is_model_ready("gpu_fallback")
    parameters = client.get_model_metadata("gpu_fallback")["parameters"]
    assert parameters["device"] == "gpu"
    assert parameters["requested_providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert parameters["execution_providers"] == ["CPUExecutionProvider"]
    client.close()
    assert http.post("/v2/models/gpu_fallback/infer", json=IRIS_SAMPLE).status_code == 200
    metrics = http.get("/metrics").text
    assert (
        'mlgit_model_execution_provider{model="gpu_fallback",provider="CPUExecutionProvider",version="1"} 1.0'
        in metrics
    )
    assert 'mlgit_model_ready{model="gpu",version="1"} 0.0' in metrics


def test_infer_before_ready_is_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that come while models still load are turned away with Retry-After; liveness answers."""
    loading = threading.Event()
    create_session = OnnxModel._create_session

    def slow_create_session(self: OnnxModel) -> None:
        loading.wait(10)
        create_session(self)

    monkeypatch.setattr(OnnxModel, "_create_session", slow_create_session)
    write_model(tmp_path, "iris", {"1": classifier(0.0)}, {}, IRIS_SAMPLE)
    running = start_server(tmp_path)
    try:
        with httpx.Client(base_url=running.url) as http:
            assert http.get("/v2/health/live").status_code == 200
            response = http.post("/v2/models/iris/infer", json=IRIS_SAMPLE)
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert response.json() == {"error": "model 'iris' version '1' is loading"}
            assert http.get("/v2/health/ready").status_code == 503
            loading.set()
            running.wait_ready()
            assert http.post("/v2/models/iris/infer", json=IRIS_SAMPLE).status_code == 200
    finally:
        loading.set()
        stop_server(running)


def _discover(root: Path) -> ModelRepository:
    repository = ModelRepository(root, ServingMetrics())
    repository.discover()
    return repository


def test_latest_version_is_the_highest_integer(tmp_path: Path) -> None:
    model = classifier(0.0)
    write_model(tmp_path, "a", {v: model for v in ("2", "10", "1", "beta")})
    write_model(tmp_path, "b", {v: model for v in ("alpha", "beta")})
    repository = _discover(tmp_path)
    assert [mv.version for mv in repository.versions("a")] == ["1", "2", "10", "beta"]
    assert repository.get("a").version == "10"
    assert repository.get("b").version == "beta"
    assert repository.get("a", "beta").version == "beta"


def test_unusable_repository_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="is not a directory"):
        _discover(tmp_path / "missing")
    with pytest.raises(RepositoryError, match="contains no model directories"):
        _discover(tmp_path)


def test_settings_file_is_the_contract(tmp_path: Path) -> None:
    """The example model-settings.json of docs/contracts.md loads as is."""
    settings = {
        "name": "iris",
        "version": "1",
        "platform": "onnxruntime",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
        "device": "cpu",
        "providers": [{"name": "CPUExecutionProvider", "options": {}}],
        "allow_cpu_fallback": False,
        "batching": {"enabled": True, "max_batch_size": 32, "max_delay_ms": 2.0, "max_queue_size": 1024},
        "threads": {"intra_op": 0, "inter_op": 0},
        "max_request_bytes": 67108864,
        "warmup": True,
    }
    write_model(tmp_path, "iris", {"1": classifier(0.0)}, sample=IRIS_SAMPLE)
    (tmp_path / "iris" / "model-settings.json").write_text(json.dumps(settings))
    running = start_server(tmp_path)
    try:
        running.wait_ready()
        assert httpx.post(f"{running.url}/v2/models/iris/infer", json=IRIS_SAMPLE).json()["outputs"][0]["data"] == [0]
    finally:
        stop_server(running)
