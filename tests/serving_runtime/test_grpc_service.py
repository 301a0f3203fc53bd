"""What gRPC has beyond the endpoint tests both protocols share (test_oip_tritonclient.py): typed tensor
contents, its own refusals, the limits, batching together with REST, metrics and logs, authentication."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import onnx
import pytest
import tritonclient.grpc as triton_grpc
from onnx import TensorProto, helper, numpy_helper
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from .conftest import ONNX_TYPES, classifier, classify, write_model
from .grpc_process import GrpcServerProcess, grpc_server_process
from .test_hostile_connections import _self_signed
from .test_tracing import CALLER_SPAN, TRACE_ID, Receiver

TYPED = {t: code for t, code in ONNX_TYPES.items() if t != "FP16"}  # FP16 travels raw only (the proto says so)
FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
SLOW_WIDTH = 256
SLOW_LAYERS = 128  # about a second for the 16000-row request: room for the others to queue behind it
# Orthogonal: a row keeps its size through the layers, so that rows stay distinct and a client given
# another's rows would be noticed.
SLOW_WEIGHTS = np.linalg.qr(np.random.default_rng(3).standard_normal((SLOW_WIDTH, SLOW_WIDTH)))[0].astype(np.float32)
KEY = "grpc-test-key-0123456789"
DEADLINE = 30.0


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers: list[Any] = ()) -> onnx.ModelProto:
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, list(initializers)), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 9
    return model


def typed_identities() -> onnx.ModelProto:
    """in_<TYPE> [N,2] -> out_<TYPE> [N,2] for every datatype that has typed contents."""
    return _model(
        [helper.make_node("Identity", [f"in_{t}"], [f"out_{t}"]) for t in TYPED],
        [helper.make_tensor_value_info(f"in_{t}", code, ["N", 2]) for t, code in TYPED.items()],
        [helper.make_tensor_value_info(f"out_{t}", code, ["N", 2]) for t, code in TYPED.items()],
    )


def slow() -> onnx.ModelProto:
    """x FP32 [N,256] -> y: SLOW_LAYERS times tanh(y W); a 16000-row request keeps the model busy a while."""
    nodes, last = [], "x"
    for layer in range(SLOW_LAYERS):
        nodes += [
            helper.make_node("MatMul", [last, "W"], [f"m{layer}"]),
            helper.make_node("Tanh", [f"m{layer}"], ["y" if layer == SLOW_LAYERS - 1 else f"t{layer}"]),
        ]
        last = f"t{layer}"
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", SLOW_WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", SLOW_WIDTH])],
        [numpy_helper.from_array(SLOW_WEIGHTS, "W")],
    )


def slow_reference(x: np.ndarray) -> np.ndarray:
    for _ in range(SLOW_LAYERS):
        x = np.tanh(x @ SLOW_WEIGHTS)
    return x


def _values(datatype: str, rows: int = 3) -> np.ndarray:
    rng = np.random.default_rng(11)
    if datatype == "BYTES":
        return np.array([[f"r{r}", f"βeta {r}"] for r in range(rows)], dtype=object)
    if datatype == "BOOL":
        return rng.integers(0, 2, (rows, 2)).astype(bool)
    dtype = triton_grpc.triton_to_np_dtype(datatype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, (rows, 2), dtype=dtype, endpoint=True)
    return (rng.standard_normal((rows, 2)) * 1000).astype(dtype)


def typed_input(name: str, datatype: str, value: np.ndarray) -> Any:
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name=name, datatype=datatype, shape=value.shape)
    items = value.ravel().tolist()
    getattr(tensor.contents, FIELDS[datatype]).extend([v.encode() for v in items] if datatype == "BYTES" else items)
    return tensor


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grpc-models")
    write_model(root, "typed", {"1": typed_identities()})
    write_model(root, "iris", {"1": classifier(0.0)})
    write_model(root, "small", {"1": classifier(0.0)}, {"max_request_bytes": 512})
    write_model(
        root, "slow", {"1": slow()}, {"batching": {"enabled": True, "max_batch_size": 64, "max_delay_ms": 2000}}
    )
    return root


@pytest.fixture(scope="module")
def served(repository: Path) -> Iterator[GrpcServerProcess]:
    with grpc_server_process(repository, max_bytes_elements=8, access_log="true") as server:
        yield server


@pytest.fixture
def stub(served: GrpcServerProcess) -> Iterator[Any]:
    with grpc.insecure_channel(served.grpc_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def _refusal(stub: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        stub.ModelInfer(request, timeout=DEADLINE)
    return excinfo.value


def _metric(url: str, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when the series does not exist yet)."""
    text = httpx.get(f"{url}/metrics", timeout=DEADLINE).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("datatype", list(TYPED))
def test_typed_contents_round_trip(stub: Any, datatype: str) -> None:
    values = {t: _values(t) for t in TYPED}
    request = service_pb2.ModelInferRequest(
        model_name="typed",
        id=f"typed-{datatype}",
        inputs=[typed_input(f"in_{t}", t, v) for t, v in values.items()],
        outputs=[service_pb2.ModelInferRequest().InferRequestedOutputTensor(name=f"out_{datatype}")],
    )
    result = triton_grpc.InferResult(stub.ModelInfer(request, timeout=DEADLINE))
    assert result.get_response().id == f"typed-{datatype}"
    got = result.as_numpy(f"out_{datatype}")
    if datatype == "BYTES":
        assert [v.decode() for v in got.ravel()] == values[datatype].ravel().tolist()
    else:
        np.testing.assert_array_equal(got, values[datatype])


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_non_finite_typed_floats_are_accepted_as_raw_ones_are(stub: Any, datatype: str) -> None:
    values = {t: _values(t) for t in TYPED}
    values[datatype].ravel()[:3] = [np.nan, np.inf, -np.inf]
    request = service_pb2.ModelInferRequest(
        model_name="typed",
        inputs=[typed_input(f"in_{t}", t, v) for t, v in values.items()],
        outputs=[service_pb2.ModelInferRequest().InferRequestedOutputTensor(name=f"out_{datatype}")],
    )
    result = triton_grpc.InferResult(stub.ModelInfer(request, timeout=DEADLINE))
    np.testing.assert_array_equal(result.as_numpy(f"out_{datatype}"), values[datatype])  # NaN equals NaN here


def test_typed_contents_are_checked_like_json_data(stub: Any) -> None:
    def request(datatype: str, **contents: list[Any]) -> Any:
        tensor = service_pb2.ModelInferRequest().InferInputTensor(name="input", datatype=datatype, shape=[1, 4])
        tensor.contents.CopyFrom(service_pb2.InferTensorContents(**contents))
        return service_pb2.ModelInferRequest(model_name="iris", inputs=[tensor])

    error = _refusal(stub, request("FP32", fp32_contents=[1.0, 2.0]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "input 'input': shape needs 4 elements, 'data' has 2"
    error = _refusal(stub, request("FP32", int_contents=[1, 2, 3, 4]))
    assert error.details() == "input 'input': FP32 data goes in contents.fp32_contents, not contents.int_contents"
    error = _refusal(stub, request("FP64", fp64_contents=[1.0, 2.0, 3.0, 4.0]))
    assert error.details() == "input 'input': expected datatype FP32, got 'FP64'"


def test_large_typed_contents_are_decoded_off_the_event_loop(stub: Any) -> None:
    """320 KB of typed floats: decoded in a worker thread (as a large REST JSON body is), same answer."""
    x = np.random.default_rng(4).random((20000, 4), dtype=np.float32)
    request = service_pb2.ModelInferRequest(model_name="iris", inputs=[typed_input("input", "FP32", x)])
    result = triton_grpc.InferResult(stub.ModelInfer(request, timeout=DEADLINE))
    np.testing.assert_array_equal(result.as_numpy("label"), classify(x, 0.0)[0])


def test_raw_contents_must_match_the_inputs(stub: Any) -> None:
    x = np.zeros((1, 4), dtype=np.float32)
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="input", datatype="FP32", shape=[1, 4])
    two = service_pb2.ModelInferRequest(model_name="iris", inputs=[tensor], raw_input_contents=[x.tobytes()] * 2)
    assert _refusal(stub, two).details() == (
        "raw_input_contents has 2 entries for 1 inputs: give one per input, in order"
    )
    short = service_pb2.ModelInferRequest(model_name="iris", inputs=[tensor], raw_input_contents=[x.tobytes()[:12]])
    assert _refusal(stub, short).details() == ("input 'input': shape needs 16 bytes of FP32, binary_data_size is 12")
    both = service_pb2.ModelInferRequest(
        model_name="iris", inputs=[typed_input("input", "FP32", x)], raw_input_contents=[x.tobytes()]
    )
    error = _refusal(stub, both)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "input 'input': has both contents and raw_input_contents"


def test_fp16_must_travel_raw(stub: Any) -> None:
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="in_FP16", datatype="FP16", shape=[1, 2])
    tensor.contents.fp32_contents.extend([1.0, 2.0])
    error = _refusal(stub, service_pb2.ModelInferRequest(model_name="typed", inputs=[tensor]))
    assert error.details() == "input 'in_FP16': FP16 has no typed contents field; send it in raw_input_contents"


def test_bytes_elements_are_capped_before_any_string_is_built(served: GrpcServerProcess) -> None:
    """The server runs with max_bytes_elements=8; a [5,2] BYTES tensor has 10."""
    value = np.array([["x", "y"]] * 5, dtype=object)
    with grpc.insecure_channel(served.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        inputs = [typed_input(f"in_{t}", t, _values(t, 5)) for t in TYPED if t != "BYTES"]
        typed = service_pb2.ModelInferRequest(
            model_name="typed", inputs=[*inputs, typed_input("in_BYTES", "BYTES", value)]
        )
        error = _refusal(stub, typed)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10 BYTES elements are more than this server accepts" in error.details()
    assert "MLGIT_SERVING_MAX_BYTES_ELEMENTS" in error.details()
    # Raw BYTES (what tritonclient sends) meet the same cap.
    tensors = []
    for datatype in TYPED:
        tensor = triton_grpc.InferInput(f"in_{datatype}", [5, 2], datatype)
        tensor.set_data_from_numpy(value if datatype == "BYTES" else _values(datatype, 5))
        tensors.append(tensor)
    with pytest.raises(InferenceServerException, match="MLGIT_SERVING_MAX_BYTES_ELEMENTS") as excinfo:
        served.client().infer("typed", tensors)
    assert excinfo.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_a_request_over_the_models_limit_is_resource_exhausted(served: GrpcServerProcess) -> None:
    client = served.client()
    x = np.zeros((40, 4), dtype=np.float32)  # 640 bytes of tensor data; the model takes 512-byte requests
    tensor = triton_grpc.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match=re.escape("exceeds this model's max_request_bytes (512)")) as e:
        client.infer("small", [tensor])
    assert e.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    small = triton_grpc.InferInput("input", [2, 4], "FP32")
    small.set_data_from_numpy(x[:2])
    assert client.infer("small", [small]).as_numpy("label").shape == (2,)


def test_failures_are_counted_and_logged_like_rest(served: GrpcServerProcess) -> None:
    before = _metric(served.url, "mlgit_inference_requests_total", model="iris", version="1", status="400")
    client = served.client()
    tensor = triton_grpc.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException):
        client.infer("iris", [tensor], request_id="counted-1")
    after = _metric(served.url, "mlgit_inference_requests_total", model="iris", version="1", status="400")
    assert after == before + 1
    failed = [e for e in served.logs if e["message"] == "inference request failed" and e["request_id"] == "counted-1"]
    assert failed and failed[0]["protocol"] == "grpc" and failed[0]["status"] == 400
    assert "expected shape [-1, 4]" in failed[0]["error"]
    assert any(e["message"] == "inference request" and e["status"] == 400 for e in served.logs)


def test_a_call_the_client_cancels_is_counted_and_logged_as_499(served: GrpcServerProcess, stub: Any) -> None:
    pending = {"model": "slow", "version": "1"}
    before = _metric(served.url, "mlgit_inference_requests_total", **pending, status="499")
    x = np.zeros((16000, SLOW_WIDTH), dtype=np.float32)
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="x", datatype="FP32", shape=list(x.shape))
    request = service_pb2.ModelInferRequest(
        model_name="slow", id="cancelled-1", inputs=[tensor], raw_input_contents=[x.tobytes()]
    )
    call = stub.ModelInfer.future(request, timeout=DEADLINE)
    deadline = time.monotonic() + DEADLINE
    while _metric(served.url, "mlgit_inference_pending_requests", **pending) < 1:
        assert time.monotonic() < deadline, "the request was never admitted"
    assert call.cancel()
    while _metric(served.url, "mlgit_inference_requests_total", **pending, status="499") < before + 1:
        assert time.monotonic() < deadline, "the cancelled call was not counted as 499"

    def logged() -> list[dict[str, Any]]:
        return [
            e for e in served.logs if e["message"] == "inference request failed" and e["request_id"] == "cancelled-1"
        ]

    while not logged():
        assert time.monotonic() < deadline, "the cancelled call was not logged"
    assert logged()[0]["status"] == 499 and logged()[0]["protocol"] == "grpc"


def test_rest_and_grpc_requests_share_batches(served: GrpcServerProcess) -> None:
    """While a long request keeps the model busy, four REST and four gRPC one-row requests queue; the next
    batch takes them all: a batch of more than four rows can only be both protocols' requests together."""
    url = served.url
    blocker = np.random.default_rng(5).standard_normal((16000, SLOW_WIDTH)).astype(np.float32)
    rows = np.random.default_rng(6).standard_normal((8, SLOW_WIDTH)).astype(np.float32)
    pending = {"model": "slow", "version": "1"}
    mixed_before = _metric(url, "mlgit_inference_batch_size_bucket", **pending, le="8.0") - _metric(
        url, "mlgit_inference_batch_size_bucket", **pending, le="4.0"
    )

    def grpc_infer(x: np.ndarray) -> np.ndarray:
        client = served.client()
        tensor = triton_grpc.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        return client.infer("slow", [tensor], client_timeout=DEADLINE).as_numpy("y")

    def rest_infer(x: np.ndarray) -> np.ndarray:
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}
        response = httpx.post(f"{url}/v2/models/slow/infer", json=body, timeout=DEADLINE)
        assert response.status_code == 200, response.text
        return np.array(response.json()["outputs"][0]["data"], dtype=np.float32).reshape(x.shape)

    with ThreadPoolExecutor(9) as pool:
        busy = pool.submit(grpc_infer, blocker)
        deadline = time.monotonic() + DEADLINE
        while _metric(url, "mlgit_inference_pending_requests", **pending) < 1:
            assert time.monotonic() < deadline and not busy.done(), "the long request was never admitted"
        answers = [pool.submit(rest_infer if i % 2 else grpc_infer, rows[i : i + 1]) for i in range(8)]
        assert busy.result().shape == blocker.shape
        got = np.concatenate([a.result() for a in answers])
    expected = slow_reference(rows)
    assert np.abs(expected[:, None] - expected[None]).max() > 0.1  # the rows are told apart
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
    mixed_after = _metric(url, "mlgit_inference_batch_size_bucket", **pending, le="8.0") - _metric(
        url, "mlgit_inference_batch_size_bucket", **pending, le="4.0"
    )
    assert mixed_after > mixed_before, "no batch held requests of both protocols"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServerProcess]:
    """Only a 512-byte model: the whole gRPC server's message limit is then 512 bytes."""
    root = tmp_path_factory.mktemp("keyed-models")
    write_model(root, "small", {"1": classifier(0.0)}, {"max_request_bytes": 512})
    with grpc_server_process(root, auth_mode="api-key", api_keys=KEY) as server:
        yield server


def test_authentication_reads_the_authorization_metadata(keyed: GrpcServerProcess) -> None:
    client = keyed.client()
    assert client.is_server_live() and client.is_server_ready()  # open, like /v2/health/*
    with pytest.raises(InferenceServerException, match="authentication required") as excinfo:
        client.get_model_metadata("small")
    assert excinfo.value.status() == "StatusCode.UNAUTHENTICATED"
    x = np.zeros((1, 4), dtype=np.float32)
    tensor = triton_grpc.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match="the API key is not valid") as excinfo:
        client.infer("small", [tensor], headers={"authorization": "Bearer wrong-key-0123456789"})
    assert excinfo.value.status() == "StatusCode.UNAUTHENTICATED"
    accepted = client.infer("small", [tensor], headers={"authorization": f"Bearer {KEY}"})
    assert accepted.as_numpy("label").tolist() == [0]
    headers = {"authorization": f"Bearer {KEY}"}
    assert client.get_model_metadata("small", headers=headers, as_json=True)["name"] == "small"
    metrics = httpx.get(f"{keyed.url}/metrics", headers=headers, timeout=DEADLINE).text
    assert 'mlgit_auth_failures_total{reason="missing"}' in metrics
    assert 'mlgit_inference_requests_by_identity_total{identity="key-1",model="small"} 1.0' in metrics


def test_a_message_over_every_models_limit_is_refused_by_grpc(keyed: GrpcServerProcess) -> None:
    x = np.zeros((100, 4), dtype=np.float32)
    tensor = triton_grpc.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException) as excinfo:
        keyed.client().infer("small", [tensor], headers={"authorization": f"Bearer {KEY}"})
    assert excinfo.value.status() == "StatusCode.RESOURCE_EXHAUSTED"


def _rss_bytes(pid: int) -> int:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) * 1024


def test_unauthenticated_calls_are_refused_before_their_message_is_read(tmp_path: Path) -> None:
    """96 concurrent 16 MiB calls without a credential once held 1.3 GB (each message read whole before the
    refusal) and kept it. A bound on the outcome, far below what reading them would cost."""
    write_model(tmp_path, "iris", {"1": classifier(0.0)})  # max_request_bytes: 64 MiB by default
    tensor = service_pb2.ModelInferRequest().InferInputTensor(name="input", datatype="FP32", shape=[1, 4])
    request = service_pb2.ModelInferRequest(model_name="iris", inputs=[tensor], raw_input_contents=[bytes(16 << 20)])
    with grpc_server_process(tmp_path, auth_mode="api-key", api_keys=KEY) as server:
        before = _rss_bytes(server.process.pid)
        channels = [grpc.insecure_channel(server.grpc_address) for _ in range(4)]
        try:
            stubs = [service_pb2_grpc.GRPCInferenceServiceStub(channel) for channel in channels]
            calls = [stubs[i % 4].ModelInfer.future(request, timeout=120) for i in range(96)]
            codes = {call.exception().code() for call in calls}
        finally:
            for channel in channels:
                channel.close()
        grown = _rss_bytes(server.process.pid) - before
    assert codes == {grpc.StatusCode.UNAUTHENTICATED}
    assert grown < 300 << 20, f"the server grew by {grown >> 20} MiB"


def test_sigterm_drains_grpc_like_rest(repository: Path) -> None:
    """After SIGTERM: ServerReady false while calls are still served (shutdown delay), a call in flight
    finishes, then the process exits 0."""
    with grpc_server_process(repository, shutdown_delay_seconds=6, drain_seconds=30) as server:
        client = server.client()
        blocker = np.random.default_rng(8).standard_normal((16000, SLOW_WIDTH)).astype(np.float32)
        tensor = triton_grpc.InferInput("x", list(blocker.shape), "FP32")
        tensor.set_data_from_numpy(blocker)
        outcome: list[Any] = []
        inflight = threading.Thread(
            target=lambda: outcome.append(client.infer("slow", [tensor], client_timeout=60).as_numpy("y").shape)
        )
        inflight.start()
        deadline = time.monotonic() + DEADLINE
        while _metric(server.url, "mlgit_inference_pending_requests", model="slow", version="1") < 1:
            assert time.monotonic() < deadline, "the long request was never admitted"
        server.process.terminate()
        prober = server.client()
        deadline = time.monotonic() + DEADLINE
        while prober.is_server_ready():
            assert time.monotonic() < deadline, "ServerReady stayed true after SIGTERM"
        assert prober.is_server_live()
        small = triton_grpc.InferInput("input", [1, 4], "FP32")
        small.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
        assert prober.infer("iris", [small]).as_numpy("label").tolist() == [0]  # still served, not ready
        inflight.join(timeout=60)
        assert outcome == [blocker.shape]
        assert server.process.wait(timeout=60) == 0


def test_grpc_speaks_tls_with_the_https_certificate(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "iris", {"1": classifier(0.0)})
    cert, key = _self_signed(tmp_path)
    server = GrpcServerProcess(root, tls_cert_file=cert, tls_key_file=key)
    try:
        client = triton_grpc.InferenceServerClient(server.grpc_address, ssl=True, root_certificates=str(cert))
        deadline = time.monotonic() + DEADLINE
        while not client.is_server_ready():
            assert time.monotonic() < deadline and server.process.poll() is None, server.logs[-3:]
        tensor = triton_grpc.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
        assert client.infer("iris", [tensor]).as_numpy("label").tolist() == [0]
        with pytest.raises(InferenceServerException):  # plain text is not served
            triton_grpc.InferenceServerClient(server.grpc_address).is_server_live(client_timeout=5)
    finally:
        server.stop()


def test_every_worker_serves_grpc_and_the_scrape_counts_them_all(repository: Path) -> None:
    with grpc_server_process(repository, workers=2) as server:
        deadline = time.monotonic() + DEADLINE
        while sum(e["message"] == "gRPC listening" for e in server.logs) < 2:
            assert time.monotonic() < deadline, "not every worker listens on the gRPC port"
            time.sleep(0.01)
        x = np.zeros((1, 4), dtype=np.float32)
        for _ in range(20):  # a connection each: the kernel spreads them over the workers
            client = server.client()
            tensor = triton_grpc.InferInput("input", [1, 4], "FP32")
            tensor.set_data_from_numpy(x)
            assert client.infer("iris", [tensor]).as_numpy("label").tolist() == [0]
            client.close()
        assert _metric(server.url, "mlgit_inference_requests_total", model="iris", version="1", status="200") == 20


def test_grpc_inference_continues_the_callers_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver()
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # the server process exports within 20 ms
    write_model(tmp_path, "iris", {"1": classifier(0.0)})
    try:
        with (
            grpc_server_process(tmp_path, tracing_endpoint=receiver.url) as server,
            grpc.insecure_channel(server.grpc_address) as channel,
        ):
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            x = np.zeros((1, 4), dtype=np.float32)
            tensor = service_pb2.ModelInferRequest().InferInputTensor(name="input", datatype="FP32", shape=[1, 4])
            request = service_pb2.ModelInferRequest(
                model_name="iris", inputs=[tensor], raw_input_contents=[x.tobytes()]
            )
            caller = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
            _, call = stub.ModelInfer.with_call(request, metadata=[("traceparent", caller)], timeout=DEADLINE)
            echoed = dict(call.initial_metadata())["traceparent"]
            spans = {span.name: span for _, span in receiver.take(5)}
    finally:
        receiver.server.shutdown()
    version, trace_id, server_span, flags = echoed.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    server = spans.pop("POST /v2/models/{model}/infer")
    assert server.trace_id.hex() == TRACE_ID and server.parent_span_id.hex() == CALLER_SPAN
    assert server.span_id.hex() == server_span
    assert set(spans) == {"decode", "queue", "batch", "encode"}
    assert all(child.parent_span_id.hex() == server_span for child in spans.values())
