"""Every OIP v2 endpoint through the real tritonclient clients: tritonclient.http against REST and
tritonclient.grpc against the gRPC service (a server process, grpc_process.py), the same cases for both."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .conftest import ONNX_TYPES, RunningServer, classify
from .oip_clients import OipClient

pytestmark = pytest.mark.usefixtures("server")

# HTTP chooses binary or JSON per tensor; tritonclient.grpc always sends raw tensors (the typed contents
# that are gRPC's JSON counterpart are in test_grpc_service.py).
BINARY_IDS = ["http-binary", "http-json", "grpc"]
ENCODINGS = [("http", True, True), ("http", False, False), ("http", True, False), ("http", False, True)]
ENCODINGS.append(("grpc", True, True))
ENCODING_IDS = ["http-bin-bin", "http-json-json", "http-bin-json", "http-json-bin", "grpc"]


@pytest.fixture(params=["http", "grpc"])
def oip(request: pytest.FixtureRequest) -> Iterator[OipClient]:
    if request.param == "http":
        server: RunningServer = request.getfixturevalue("server")
        client = OipClient("http", triton.InferenceServerClient(url=server.address))
    else:
        client = OipClient("grpc", request.getfixturevalue("grpc_server").client())
    yield client
    client.client.close()


def _sample(datatype: str, rows: int = 3) -> np.ndarray:
    rng = np.random.default_rng(7)
    if datatype == "BYTES":
        return np.array([[f"row{r}-a", f"βeta {r}"] for r in range(rows)], dtype=object)
    if datatype == "BOOL":
        return rng.integers(0, 2, (rows, 2)).astype(bool)
    dtype = triton.triton_to_np_dtype(datatype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, (rows, 2), dtype=dtype, endpoint=True)
    return (rng.standard_normal((rows, 2)) * 1000).astype(dtype)


def test_health_and_server_metadata(oip: OipClient) -> None:
    assert oip.client.is_server_live()
    assert oip.client.is_server_ready()
    metadata = oip.server_metadata()
    assert metadata["name"] == "mlgit-serving"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata_and_readiness(oip: OipClient) -> None:
    latest = oip.model_metadata("iris")
    assert latest["versions"] == ["1", "2"]
    assert latest["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in latest["outputs"]] == ["label", "probabilities"]
    if oip.protocol == "http":  # the gRPC message has no parameters
        assert latest["parameters"]["version"] == "2"
        assert latest["parameters"]["execution_providers"] == ["CPUExecutionProvider"]
        assert oip.model_metadata("iris", "1")["parameters"]["version"] == "1"
    assert oip.client.is_model_ready("iris")
    assert oip.client.is_model_ready("iris", "1")
    assert not oip.client.is_model_ready("iris", "9")
    assert not oip.client.is_model_ready("nope")


@pytest.mark.parametrize(
    ("oip", "binary"), [("http", True), ("http", False), ("grpc", True)], ids=BINARY_IDS, indirect=["oip"]
)
def test_infer_defaults_to_latest_version(oip: OipClient, binary: bool) -> None:
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    tensor = oip.tensor("input", x, "FP32", binary)
    outputs = [oip.output(n, binary) for n in ("label", "probabilities")]
    for version, bias in (("", 100.0), ("1", 0.0), ("2", 100.0)):
        result = oip.infer("iris", [tensor], model_version=version, outputs=outputs)
        label, probabilities = classify(x, bias)
        assert oip.response(result)["model_version"] == (version or "2")
        np.testing.assert_array_equal(result.as_numpy("label"), label)
        np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("datatype", list(ONNX_TYPES))
@pytest.mark.parametrize(("oip", "binary_in", "binary_out"), ENCODINGS, ids=ENCODING_IDS, indirect=["oip"])
def test_every_datatype_round_trips(oip: OipClient, datatype: str, binary_in: bool, binary_out: bool) -> None:
    inputs = []
    expected = {}
    for name in ONNX_TYPES:
        value = _sample(name)
        # Only the datatype under test varies its encoding; the others travel as binary.
        inputs.append(oip.tensor(f"in_{name}", value, name, binary_in if name == datatype else True))
        expected[name] = value
    output = oip.output(f"out_{datatype}", binary_out)
    result = oip.infer("types", inputs, outputs=[output], request_id=f"req-{datatype}")
    response = oip.response(result)
    assert response["id"] == f"req-{datatype}"
    assert [o["name"] for o in response["outputs"]] == [f"out_{datatype}"]
    got = result.as_numpy(f"out_{datatype}")
    if datatype == "BYTES":
        got = np.array([v.decode() if isinstance(v, bytes) else v for v in got.ravel()], dtype=object)
        assert got.tolist() == expected[datatype].ravel().tolist()
    else:
        assert got.dtype == triton.triton_to_np_dtype(datatype)
        np.testing.assert_array_equal(got, expected[datatype])


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(oip: OipClient, algorithm: str) -> None:
    x = np.random.default_rng(1).random((50, 4), dtype=np.float32)
    for binary in (True, False):
        tensor = oip.tensor("input", x, "FP32", binary)
        result = oip.infer("iris", [tensor], model_version="1", compression=algorithm)
        np.testing.assert_array_equal(result.as_numpy("label"), classify(x, 0.0)[0])


def test_requested_output_subset(oip: OipClient) -> None:
    x = np.random.default_rng(2).random((4, 4), dtype=np.float32)
    tensor = oip.tensor("input", x, "FP32")
    only_label = oip.infer("iris", [tensor], model_version="1", outputs=[oip.output("label", binary=False)])
    assert [o["name"] for o in oip.response(only_label)["outputs"]] == ["label"]
    assert only_label.as_numpy("probabilities") is None
    reordered = oip.infer(
        "iris", [tensor], model_version="1", outputs=[oip.output(n) for n in ("probabilities", "label")]
    )
    assert [o["name"] for o in oip.response(reordered)["outputs"]] == ["probabilities", "label"]
    np.testing.assert_allclose(reordered.as_numpy("probabilities"), classify(x, 0.0)[1], rtol=1e-5, atol=1e-6)


def test_mixed_output_encodings(client: triton.InferenceServerClient) -> None:
    """REST only: gRPC has no per-output choice of encoding."""
    x = np.random.default_rng(2).random((4, 4), dtype=np.float32)
    tensor = triton.InferInput("input", [4, 4], "FP32")
    tensor.set_data_from_numpy(x)
    mixed = client.infer(
        "iris",
        [tensor],
        model_version="1",
        outputs=[
            triton.InferRequestedOutput("probabilities", binary_data=True),
            triton.InferRequestedOutput("label", binary_data=False),
        ],
    )
    outputs = mixed.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["probabilities", "label"]
    assert "binary_data_size" in outputs[0]["parameters"] and "data" in outputs[1]
    np.testing.assert_allclose(mixed.as_numpy("probabilities"), classify(x, 0.0)[1], rtol=1e-5, atol=1e-6)


def test_client_sees_oip_errors(oip: OipClient) -> None:
    with pytest.raises(InferenceServerException, match="unknown model 'nope'") as excinfo:
        oip.model_metadata("nope")
    assert oip.status(excinfo.value) == "404"
    tensor = oip.tensor("input", np.zeros((1, 3), dtype=np.float32), "FP32")
    with pytest.raises(InferenceServerException, match=r"input 'input': expected shape \[-1, 4\]") as excinfo:
        oip.infer("iris", [tensor])
    assert oip.status(excinfo.value) == "400"
    with pytest.raises(InferenceServerException, match="has no version '7'") as excinfo:
        oip.infer("iris", [tensor], model_version="7")
    assert oip.status(excinfo.value) == "404"


def test_fixed_shape_model(oip: OipClient) -> None:
    image = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
    result = oip.infer("fixed", [oip.tensor("image", image, "FP32")])
    assert result.as_numpy("total").item() == 6.0
    assert oip.model_metadata("fixed")["inputs"][0]["shape"] == [1, 2, 2]
