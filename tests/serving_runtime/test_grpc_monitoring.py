"""gRPC ModelInfer goes through REST's audit log, payload log and feedback memory: switching protocol
dodges none of them. The server is a process (grpc_process.py); the payload log's sink runs here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from .conftest import classifier, classify, write_model
from .grpc_process import GrpcServerProcess, grpc_server_process
from .test_payload_log import Sink, wait_for

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
DEADLINE = 30.0


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    running = Sink()
    yield running
    running.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[GrpcServerProcess]:
    root: Path = tmp_path_factory.mktemp("grpc-monitored")
    write_model(root, "iris", {"1": classifier(0.0)})
    settings = {
        "audit_sample_rate": 1.0,
        "audit_max_bytes": 4096,
        "payload_log_url": sink.url,
        "payload_log_batch_size": 1,
        "payload_log_flush_seconds": 0.01,
    }
    with grpc_server_process(root, **settings) as server:
        yield server


def _raw_call(server: GrpcServerProcess, request_id: str) -> triton_grpc.InferResult:
    """tritonclient's usual call: the input as raw_input_contents."""
    tensor = triton_grpc.InferInput("input", list(ROWS.shape), "FP32")
    tensor.set_data_from_numpy(ROWS)
    return server.client().infer("iris", [tensor], request_id=request_id)


def _typed_call(server: GrpcServerProcess, request_id: str) -> Any:
    """The input as typed contents (fp32_contents), through the raw stub."""
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="input", datatype="FP32", shape=list(ROWS.shape))
    tensor.contents.fp32_contents.extend(ROWS.ravel().tolist())
    request = service_pb2.ModelInferRequest(model_name="iris", id=request_id, inputs=[tensor])
    with grpc.insecure_channel(server.grpc_address) as channel:
        return service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=DEADLINE)


def _audited(server: GrpcServerProcess, request_id: str) -> list[dict[str, Any]]:
    return [e for e in server.logs if e["message"] == "inference audit" and e["request_id"] == request_id]


def test_a_grpc_call_is_audited_as_the_rest_body_it_stands_for(served: GrpcServerProcess) -> None:
    _raw_call(served, "audit-raw")
    _typed_call(served, "audit-typed")
    wait_for(lambda: _audited(served, "audit-raw") and _audited(served, "audit-typed"), "both audit records")
    raw, typed = _audited(served, "audit-raw")[0], _audited(served, "audit-typed")[0]
    assert (raw["model"], raw["version"], raw["status"]) == ("iris", "1", 200)
    # raw_input_contents: the binary extension's body, JSON part then the tensor's 32 bytes
    assert '"binary_data_size":32' in raw["request"] and raw["request"].endswith("<+32 bytes of binary tensor data>")
    assert '"data"' not in raw["request"]
    # typed contents: a pure JSON body with the data (fp32_contents' values as the doubles they are)
    assert '"data":[5.099999904632568,3.5,' in typed["request"] and "binary tensor data" not in typed["request"]
    # outputs go back raw: the response is logged as the binary extension's (label 16 bytes, probabilities 24)
    assert typed["response"].endswith("<+40 bytes of binary tensor data>") and '"id":"audit-typed"' in typed["response"]


def test_a_grpc_call_reaches_the_payload_log(served: GrpcServerProcess, sink: Sink) -> None:
    _typed_call(served, "payload-typed")
    _raw_call(served, "payload-raw")

    def event(request_id: str) -> dict[str, Any] | None:
        return next((e for e in sink.events() if e.get("mlgitrequestid") == request_id), None)

    wait_for(lambda: event("payload-typed") and event("payload-raw"), "both payload events")
    typed, raw = event("payload-typed"), event("payload-raw")
    assert typed is not None and raw is not None
    assert typed["source"] == "/v2/models/iris/versions/1"
    (tensor,) = typed["data"]["request"]["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("input", "FP32", [2, 4])
    np.testing.assert_allclose(tensor["data"], ROWS.ravel(), rtol=1e-6)
    assert raw["data"]["request"]["inputs"][0]["parameters"] == {"binary_data_size": 32}
    response = typed["data"]["response"]
    assert response["id"] == "payload-typed" and response["model_name"] == "iris"
    assert {o["name"]: o["shape"] for o in response["outputs"]} == {"label": [2], "probabilities": [2, 3]}


def test_feedback_joins_a_grpc_prediction_by_its_id(served: GrpcServerProcess) -> None:
    labels, _ = classify(ROWS, 0.0)
    truth = labels.tolist()
    truth[1] = (truth[1] + 1) % 3  # one wrong prediction of two
    _raw_call(served, "feedback-grpc")
    feedback = {"id": "feedback-grpc", "outputs": [{"name": "label", "datatype": "INT64", "shape": [2], "data": truth}]}
    answer = httpx.post(f"{served.url}/v2/models/iris/feedback", json=feedback, timeout=DEADLINE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == [{"name": "label", "correct": 1, "incorrect": 1}]
