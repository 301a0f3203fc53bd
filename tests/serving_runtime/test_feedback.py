"""POST .../feedback: ground truth for remembered predictions moves the accuracy and error metrics."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from mlgit_serving.feedback import Prediction, PredictionMemory

from .conftest import RunningServer, classify, start_server, stop_server

KEY = "feedback-0123456789abcdef"
OUTCOMES = ("correct", "incorrect")
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 2.0, 0.0], [0.3, -2.0, 1.0, 1.0]])


@pytest.fixture(scope="module")
def server(model_repository: Path) -> Iterator[RunningServer]:
    running = start_server(
        model_repository, auth_mode="api-key", api_keys=KEY, feedback_memory=3, request_body_timeout_seconds=1
    )
    running.wait_loaded()
    yield running
    stop_server(running)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def infer(http: httpx.Client, request_id: str, path: str = "/v2/models/iris/versions/1/infer") -> None:
    body = {
        "id": request_id,
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [4, 4], "data": ROWS.ravel().tolist()}],
    }
    assert http.post(path, json=body).status_code == 200


def sample(server: RunningServer, name: str, labels: dict[str, str]) -> float:
    return server.app.state.serving.metrics.registry.get_sample_value(name, labels) or 0.0


def test_labels_count_correct_and_incorrect(server: RunningServer, http: httpx.Client) -> None:
    labels, _ = classify(ROWS, 0.0)
    truth = labels.tolist()
    truth[3] = (truth[3] + 1) % 3  # one wrong prediction of four
    correct = {"model": "iris", "version": "1", "outcome": "correct"}
    incorrect = {**correct, "outcome": "incorrect"}
    before = sample(server, "mlgit_feedback_total", correct), sample(server, "mlgit_feedback_total", incorrect)
    infer(http, "labels-1")
    answer = http.post(
        "/v2/models/iris/feedback",
        json={"id": "labels-1", "outputs": [{"name": "label", "datatype": "INT64", "shape": [4], "data": truth}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == [{"name": "label", "correct": 3, "incorrect": 1}]
    assert sample(server, "mlgit_feedback_total", correct) - before[0] == 3
    assert sample(server, "mlgit_feedback_total", incorrect) - before[1] == 1


def test_float_outputs_observe_their_mean_absolute_error_once(server: RunningServer, http: httpx.Client) -> None:
    _, probabilities = classify(ROWS, 0.0)
    labels = {"model": "iris", "version": "1"}
    count = sample(server, "mlgit_prediction_error_count", labels)
    total = sample(server, "mlgit_prediction_error_sum", labels)
    infer(http, "floats-1")
    truth = (probabilities + 0.25).ravel().tolist()
    answer = http.post(
        "/v2/models/iris/versions/1/feedback",
        json={"id": "floats-1", "outputs": [{"name": "probabilities", "shape": [4, 3], "data": truth}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["mean_absolute_error"] == pytest.approx(0.25, abs=1e-5)
    # One observation per output tensor, however many elements: a mask must not stall the event loop.
    assert sample(server, "mlgit_prediction_error_count", labels) - count == 1
    assert sample(server, "mlgit_prediction_error_sum", labels) - total == pytest.approx(0.25, abs=1e-5)


def test_unknown_given_and_evicted_ids_are_404(http: httpx.Client) -> None:
    feedback = {"outputs": [{"name": "label", "data": [0, 0, 0, 0]}]}
    answer = http.post("/v2/models/iris/feedback", json={"id": "never-sent", **feedback})
    assert answer.status_code == 404
    assert "'never-sent'" in answer.json()["error"] and "last 3 requests" in answer.json()["error"]
    infer(http, "once")
    assert http.post("/v2/models/iris/feedback", json={"id": "once", **feedback}).status_code == 200
    assert http.post("/v2/models/iris/feedback", json={"id": "once", **feedback}).status_code == 404  # not twice
    for request_id in ("old", "new-1", "new-2", "new-3"):  # the memory holds 3
        infer(http, request_id)
    assert http.post("/v2/models/iris/feedback", json={"id": "old", **feedback}).status_code == 404
    assert http.post("/v2/models/iris/feedback", json={"id": "new-1", **feedback}).status_code == 200
    infer(http, "served-by-2", "/v2/models/iris/versions/2/infer")
    assert http.post("/v2/models/iris/versions/1/feedback", json={"id": "served-by-2", **feedback}).status_code == 404
    assert http.post("/v2/models/iris/versions/2/feedback", json={"id": "served-by-2", **feedback}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not valid JSON"),
        (b'{"outputs": []}', '"id"'),
        (b'{"id": "bad-1", "outputs": []}', '"outputs"'),
        (b'{"id": "bad-1", "outputs": [{"name": "nope", "data": [1]}]}', "'nope'"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [1, 2]}]}', "2 elements given"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "shape": [2, 2], "data": [1, 2, 0, 0]}]}', "shape"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": ["a", "b", "c", "d"]}]}', "type"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "shape": 1, "data": [0, 0, 0, 0]}]}', '"shape" must be'),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "shape": "4", "data": [0, 0, 0, 0]}]}', '"shape" must be'),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "shape": [4.0], "data": [0, 0, 0, 0]}]}', '"shape" must be'),
        (b'{"id": "bad-1", "outputs": [{"name": ["label"], "data": [0, 0, 0, 0]}]}', '"name" must be a string'),
        (b'{"id": "bad-1", "outputs": [{"data": [0, 0, 0, 0]}]}', '"name" must be a string'),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [18446744073709551615, 0, 0, 0]}]}', "range"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [-9223372036854775809, 0, 0, 0]}]}', ""),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [1e300, 0, 0, 0]}]}', "must be integers"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [0.7, 0, 0, 0]}]}', "must be integers"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [true, 0, 0, 0]}]}', "got boolean"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": [[0], [0], [0], [0]]}]}', "a flat list"),
        (b'{"id": "bad-1", "outputs": [{"name": "label", "data": {"a": 1}}]}', '"data" must be'),
        (
            b'{"id":"bad-1","outputs":[{"name":"probabilities", "data":[true, "1", null, 0, 0, 0, 0, 0, 0, 0, 0, 0]}]}',
            "must be finite numbers, got boolean, null, string",
        ),
        (
            b'{"id":"bad-1","outputs":[{"name":"probabilities", "data":[1e300, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}]}',
            "out of its FP32 type's range",
        ),
        (
            b'{"id":"bad-1","outputs":[{"name":"label", "data":[0, 0, 0, 0]}, {"name":"label", "data":[0, 0, 0, 0]}]}',
            "given twice",
        ),
        (  # checked in full before any is counted: a bad second output leaves the first uncounted too
            b'{"id":"bad-1","outputs":[{"name":"label", "data":[0, 0, 0, 0]}, {"name":"probabilities", "data":[0]}]}',
            "1 elements given",
        ),
    ],
)
def test_bad_bodies_are_400_and_keep_the_prediction(
    server: RunningServer, http: httpx.Client, body: bytes, message: str
) -> None:
    infer(http, "bad-1")
    counted = [
        sample(server, "mlgit_feedback_total", {"model": "iris", "version": "1", "outcome": o}) for o in OUTCOMES
    ]
    answer = http.post("/v2/models/iris/feedback", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert [
        sample(server, "mlgit_feedback_total", {"model": "iris", "version": "1", "outcome": o}) for o in OUTCOMES
    ] == (counted)
    good = {"id": "bad-1", "outputs": [{"name": "label", "data": [0, 0, 0, 0]}]}
    assert http.post("/v2/models/iris/feedback", json=good).status_code == 200


def test_feedback_needs_the_credential_inference_needs(server: RunningServer) -> None:
    body = {"id": "x", "outputs": [{"name": "label", "data": [0]}]}
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("/v2/models/iris/feedback", json=body).status_code == 401
        wrong = anonymous.post("/v2/models/iris/feedback", json=body, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401


def test_documented_in_openapi(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v2/models/{model_name}/feedback", "/v2/models/{model_name}/versions/{model_version}/feedback"):
        operation = paths[path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["required"] == ["id", "outputs"]
        assert {"200", "400", "404"} <= set(operation["responses"])


def test_remembered_outputs_are_bounded_in_bytes_and_copied() -> None:
    """A mask per request at the default count would hold hundreds of MiB: bytes bind first."""
    memory = PredictionMemory(capacity=100, max_bytes=3 * 4096)
    batch = np.zeros((8, 1024), dtype=np.float32)  # a batch's output; each request's rows are a view of it
    for i in range(5):
        memory.remember("m", f"r{i}", Prediction("1", {"mask": ("FP32", batch[i])}))
    assert memory.nbytes == 3 * 4096 and memory.take("m", "r1") is None  # the two oldest went
    kept = memory.take("m", "r4")
    assert kept is not None and kept.outputs["mask"][1].base is None  # a copy: the batch is not kept alive
    memory.remember("m", "huge", Prediction("1", {"mask": ("FP32", np.zeros(8192, dtype=np.float32))}))
    assert memory.take("m", "huge") is None and memory.nbytes == 2 * 4096


def test_a_body_over_16_mib_is_413_before_it_is_read(http: httpx.Client) -> None:
    answer = http.post(
        "/v2/models/iris/feedback", content=b" " * (16 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and "16777216" in answer.json()["error"], answer.text


def test_a_stalled_body_is_408(server: RunningServer) -> None:
    """The body is read within request_body_timeout_seconds (1 s here), as inference reads its own."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(
            b"POST /v2/models/iris/feedback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id"'
        )
        started = time.monotonic()
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 5


def test_string_outputs_count_their_bytes() -> None:
    """BYTES outputs are object arrays of pointers: the byte cap must count what they point to."""
    strings = np.array(["x" * 1000] * 4, dtype=object)
    assert Prediction("1", {"text": ("BYTES", strings)}).nbytes >= 4000
    memory = PredictionMemory(capacity=100, max_bytes=3000)
    memory.remember("m", "r", Prediction("1", {"text": ("BYTES", strings)}))
    assert memory.take("m", "r") is None and memory.nbytes == 0
