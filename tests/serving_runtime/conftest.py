"""Tiny real ONNX models built with onnx.helper, model repositories, and real servers on free ports."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
import tritonclient.http as triton
import uvicorn
from onnx import TensorProto, helper, numpy_helper

from mlgit_serving.app import create_app
from mlgit_serving.server import uvicorn_config
from mlgit_serving.settings import ServerSettings

ONNX_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}
CLASSIFIER_WEIGHTS = np.array([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.5, 1.0], [0.2, 0.2, 0.2]], dtype=np.float32)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers: list[Any] = ()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9  # readable by every onnxruntime this project supports
    onnx.checker.check_model(model)
    return model


def classifier(bias: float) -> onnx.ModelProto:
    """input FP32 [N,4] -> probabilities FP32 [N,3] (softmax(x W + bias)), label INT64 [N] (argmax)."""
    return _model(
        [
            helper.make_node("MatMul", ["input", "W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=-1, keepdims=0),
        ],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
        ],
        [
            numpy_helper.from_array(CLASSIFIER_WEIGHTS, "W"),
            numpy_helper.from_array(np.array([bias, 0.0, 0.0], dtype=np.float32), "B"),
        ],
    )


def classify(x: np.ndarray, bias: float) -> tuple[np.ndarray, np.ndarray]:
    """What classifier(bias) computes, in numpy."""
    logits = x.astype(np.float32) @ CLASSIFIER_WEIGHTS + np.array([bias, 0, 0], dtype=np.float32)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp.argmax(axis=-1), exp / exp.sum(axis=-1, keepdims=True)


def identity_all_types() -> onnx.ModelProto:
    """in_<TYPE> [N,2] -> out_<TYPE> [N,2] for every OIP datatype."""
    return _model(
        [helper.make_node("Identity", [f"in_{t}"], [f"out_{t}"]) for t in ONNX_TYPES],
        [helper.make_tensor_value_info(f"in_{t}", code, ["N", 2]) for t, code in ONNX_TYPES.items()],
        [helper.make_tensor_value_info(f"out_{t}", code, ["N", 2]) for t, code in ONNX_TYPES.items()],
    )


def lookup() -> onnx.ModelProto:
    """index INT64 [N] -> value FP32 [N,1] from a table of 10 rows: an index past 9 fails in onnxruntime."""
    table = numpy_helper.from_array(np.arange(10, dtype=np.float32).reshape(10, 1) * 10, "table")
    return _model(
        [helper.make_node("Gather", ["table", "index"], ["value"], axis=0)],
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])],
        [table],
    )


def row_sum() -> onnx.ModelProto:
    """x FP32 [N,M] -> total FP32 [N]: requests with different M cannot share a batch."""
    return _model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M"])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N"])],
        [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")],
    )


def two_identities() -> onnx.ModelProto:
    """a[N,1] -> a_out, b[N,1] -> b_out: two inputs whose batch sizes a client could make disagree."""
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n in ("a", "b")]
    spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1]) for n in ("a", "b")]
    out = [helper.make_tensor_value_info(f"{n}_out", TensorProto.FLOAT, ["N", 1]) for n in ("a", "b")]
    return _model(nodes, spec, out)


def fixed_shape() -> onnx.ModelProto:
    """image FP32 [1,2,2] -> total FP32 [1] (no dynamic batch dimension)."""
    return _model(
        [helper.make_node("ReduceSum", ["image"], ["total"], keepdims=0)],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 2, 2])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
    )


def write_model(
    root: Path,
    name: str,
    versions: dict[str, onnx.ModelProto],
    settings: dict[str, Any] | None = None,
    sample: dict[str, Any] | None = None,
) -> None:
    """Lay a model out as docs/contracts.md says the serving runtime finds it."""
    directory = root / name
    for version, model in versions.items():
        (directory / version).mkdir(parents=True)
        onnx.save(model, directory / version / "model.onnx")
    if settings is not None:
        (directory / "model-settings.json").write_text(json.dumps({"name": name, **settings}))
    if sample is not None:
        (directory / "sample.json").write_text(json.dumps(sample))


IRIS_SAMPLE = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}],
    "expected_outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}],
}


@dataclass
class RunningServer:
    app: Any
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url) as client:
            while client.get("/v2/health/ready").status_code != 200:
                assert time.monotonic() < deadline, client.get("/v2/health/ready").text
                time.sleep(0.01)

    def wait_loaded(self, timeout: float = 30.0) -> None:
        """Wait until no model version is still loading (ready or failed)."""
        repository = self.app.state.serving.repository
        deadline = time.monotonic() + timeout
        while any(mv.state == "loading" for mv in repository.all()):
            assert time.monotonic() < deadline
            time.sleep(0.01)


def start_server(repository: Path, **settings: Any) -> RunningServer:
    """uvicorn on 127.0.0.1 with a port the OS picks, in a thread, configured as the server runs it (its
    protocol with the head limits and whole-body reads); returns once it listens."""
    server_settings = ServerSettings(model_repository=repository, host="127.0.0.1", port=0, **settings)
    app = create_app(server_settings)
    config = uvicorn_config(app, server_settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(app, server, thread, port)


def stop_server(running: RunningServer) -> None:
    running.server.should_exit = True
    running.thread.join(timeout=30)


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(
        root,
        "iris",
        {"1": classifier(0.0), "2": classifier(100.0)},
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]},
        IRIS_SAMPLE,
    )
    write_model(
        root,
        "iris_batched",
        {"1": classifier(0.0)},
        {"batching": {"enabled": True, "max_batch_size": 8, "max_delay_ms": 20}},
        IRIS_SAMPLE,
    )
    write_model(root, "types", {"1": identity_all_types()})
    write_model(
        root, "lookup", {"1": lookup()}, {"batching": {"enabled": True, "max_batch_size": 64, "max_delay_ms": 200}}
    )
    write_model(
        root, "rowsum", {"1": row_sum()}, {"batching": {"enabled": True, "max_batch_size": 64, "max_delay_ms": 200}}
    )
    write_model(root, "tiny_queue", {"1": classifier(0.0)}, {"batching": {"enabled": True, "max_queue_size": 1}})
    write_model(root, "fixed", {"1": fixed_shape()})
    write_model(
        root, "two", {"1": two_identities()}, {"batching": {"enabled": True, "max_batch_size": 64, "max_delay_ms": 100}}
    )
    write_model(root, "small", {"1": classifier(0.0)}, {"max_request_bytes": 512})
    return root


@pytest.fixture(scope="session")
def server(model_repository: Path) -> Iterator[RunningServer]:
    running = start_server(model_repository)
    running.wait_ready()
    yield running
    stop_server(running)


@pytest.fixture
def client(server: RunningServer) -> Iterator[triton.InferenceServerClient]:
    triton_client = triton.InferenceServerClient(url=server.address)
    yield triton_client
    triton_client.close()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def grpc_server(model_repository: Path) -> Iterator[Any]:
    """model_repository served by a server process with gRPC on (grpc_process.py says why a process)."""
    from .grpc_process import grpc_server_process

    with grpc_server_process(model_repository) as running:
        yield running
