"""Models as exporters write them: inputs whose rank the graph leaves open, weights in external data files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.onnx_models import write_external_data_model, write_shapeless_model

from .conftest import RunningServer, start_server, stop_server

ANY_RANK = {"inputs": [{"name": "x", "datatype": "FP32", "shape": None}]}


def _lay_out(root: Path, name: str, write: Callable[[Path], Path], settings: dict[str, Any] | None = None) -> Path:
    (root / name / "1").mkdir(parents=True)
    write(root / name / "1" / "model.onnx")
    if settings is not None:
        (root / name / "model-settings.json").write_text(json.dumps({"name": name, **settings}))
    return root / name / "1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("exported")
    _lay_out(root, "any_rank", write_shapeless_model, ANY_RANK)  # as `mlgit render` writes it
    _lay_out(root, "any_rank_bare", write_shapeless_model)  # no settings: onnxruntime's view only
    _lay_out(root, "declared", write_shapeless_model, {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]})
    _lay_out(root, "scalar", write_shapeless_model, {"inputs": [{"name": "x", "datatype": "FP32", "shape": []}]})
    # The weights in model.onnx.data beside model.onnx, as the model image's Dockerfile copies them.
    _lay_out(root, "external", lambda path: write_external_data_model(path, location="model.onnx.data"))
    running = start_server(root)
    running.wait_loaded()  # not wait_ready: a model that fails to load fails its own tests only
    yield running
    stop_server(running)


def _infer(server: RunningServer, model: str, shape: list[int], data: list[float]) -> httpx.Response:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": shape, "data": data}]}
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=10)


@pytest.mark.parametrize("model", ["any_rank", "any_rank_bare"])
@pytest.mark.parametrize("shape", [[2, 3], [5], [1, 1, 2], []], ids=str)
def test_an_input_of_unknown_rank_takes_every_shape(server: RunningServer, model: str, shape: list[int]) -> None:
    values = np.linspace(-2, 2, int(np.prod(shape))).astype(np.float32)
    answer = _infer(server, model, shape, values.tolist())
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["shape"] == shape
    assert output["data"] == pytest.approx((np.maximum(values, 0) + 1).tolist())


def test_metadata_says_the_rank_is_unknown(server: RunningServer) -> None:
    metadata = httpx.get(f"{server.url}/v2/models/any_rank", timeout=5).json()
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": None}]


def test_a_declared_shape_is_still_enforced(server: RunningServer) -> None:
    assert _infer(server, "declared", [2, 3], [0.0] * 6).status_code == 200
    rejected = _infer(server, "declared", [6], [0.0] * 6)
    assert rejected.status_code == 400 and "expected rank 2" in rejected.json()["error"]
    scalar = _infer(server, "scalar", [2], [0.0, 1.0])
    assert scalar.status_code == 400 and "expected rank 0" in scalar.json()["error"]


def test_a_model_with_external_data_loads_and_answers(server: RunningServer) -> None:
    answer = _infer(server, "external", [1, 4], [1.0, 0.0, 0.0, 1.0])
    assert answer.status_code == 200, answer.text
    weights = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    assert answer.json()["outputs"][0]["data"] == pytest.approx((weights[0] + weights[3]).tolist())


@pytest.mark.parametrize(
    ("write", "shapes"),
    [
        (write_shapeless_model, [[2, 3], [5]]),
        (lambda path: write_external_data_model(path, location="weights/net.bin"), [[1, 4], [3, 4]]),
    ],
    ids=["unknown-rank", "external-data"],
)
def test_a_repository_made_by_init_serves_as_mlgit_serve_lays_it_out(
    tmp_path: Path, write: Callable[[Path], Path], shapes: list[list[int]]
) -> None:
    from mlgit.config.load import load_project
    from mlgit.scaffold import InitOptions, init_repository
    from mlgit.serve import runtime_repository

    model = write(tmp_path / "export" / "net.onnx")
    repo = init_repository(InitOptions(target=tmp_path / "repo", name="exported", model=model))
    with runtime_repository(load_project(repo)) as root:
        running = start_server(root)
        try:
            running.wait_ready()
            for shape in shapes:
                answer = _infer(running, "exported", shape, [0.5] * int(np.prod(shape)))
                assert answer.status_code == 200, answer.text
        finally:
            stop_server(running)
