"""Every OIP v2 REST endpoint through the real tritonclient.http client."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .conftest import ONNX_TYPES, classify

pytestmark = pytest.mark.usefixtures("server")


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


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "mlgit-serving"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata_and_readiness(client: triton.InferenceServerClient) -> None:
    latest = client.get_model_metadata("iris")
    assert latest["versions"] == ["1", "2"]
    assert latest["parameters"]["version"] == "2"
    assert latest["parameters"]["execution_providers"] == ["CPUExecutionProvider"]
    assert latest["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in latest["outputs"]] == ["label", "probabilities"]
    assert client.get_model_metadata("iris", "1")["parameters"]["version"] == "1"
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "9")
    assert not client.is_model_ready("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_defaults_to_latest_version(client: triton.InferenceServerClient, binary: bool) -> None:
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in ("label", "probabilities")]
    for version, bias in (("", 100.0), ("1", 0.0), ("2", 100.0)):
        result = client.infer("iris", [tensor], model_version=version, outputs=outputs)
        label, probabilities = classify(x, bias)
        assert result.get_response()["model_version"] == (version or "2")
        np.testing.assert_array_equal(result.as_numpy("label"), label)
        np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("datatype", list(ONNX_TYPES))
@pytest.mark.parametrize(
    ("binary_in", "binary_out"),
    [(True, True), (False, False), (True, False), (False, True)],
    ids=["bin-bin", "json-json", "bin-json", "json-bin"],
)
def test_every_datatype_round_trips(
    client: triton.InferenceServerClient, datatype: str, binary_in: bool, binary_out: bool
) -> None:
    inputs = []
    expected = {}
    for name in ONNX_TYPES:
        value = _sample(name)
        tensor = triton.InferInput(f"in_{name}", list(value.shape), name)
        # Only the datatype under test varies its encoding; the others travel as binary.
        tensor.set_data_from_numpy(value, binary_data=binary_in if name == datatype else True)
        inputs.append(tensor)
        expected[name] = value
    output = triton.InferRequestedOutput(f"out_{datatype}", binary_data=binary_out)
    result = client.infer("types", inputs, outputs=[output], request_id=f"req-{datatype}")
    response = result.get_response()
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
def test_compressed_request_bodies(client: triton.InferenceServerClient, algorithm: str) -> None:
    x = np.random.default_rng(1).random((50, 4), dtype=np.float32)
    for binary in (True, False):
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        result = client.infer("iris", [tensor], model_version="1", request_compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("label"), classify(x, 0.0)[0])


def test_requested_output_subset_and_mixed_encodings(client: triton.InferenceServerClient) -> None:
    x = np.random.default_rng(2).random((4, 4), dtype=np.float32)
    tensor = triton.InferInput("input", [4, 4], "FP32")
    tensor.set_data_from_numpy(x)
    only_label = client.infer(
        "iris", [tensor], model_version="1", outputs=[triton.InferRequestedOutput("label", binary_data=False)]
    )
    assert [o["name"] for o in only_label.get_response()["outputs"]] == ["label"]
    assert only_label.as_numpy("probabilities") is None
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


def test_client_sees_oip_errors(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="unknown model 'nope'") as excinfo:
        client.get_model_metadata("nope")
    assert excinfo.value.status() == "404"
    tensor = triton.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(InferenceServerException, match=r"input 'input': expected shape \[-1, 4\]") as excinfo:
        client.infer("iris", [tensor])
    assert excinfo.value.status() == "400"
    with pytest.raises(InferenceServerException, match="has no version '7'") as excinfo:
        client.infer("iris", [tensor], model_version="7")
    assert excinfo.value.status() == "404"


def test_fixed_shape_model(client: triton.InferenceServerClient) -> None:
    image = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
    tensor = triton.InferInput("image", [1, 2, 2], "FP32")
    tensor.set_data_from_numpy(image)
    result = client.infer("fixed", [tensor])
    assert result.as_numpy("total").item() == 6.0
    assert client.get_model_metadata("fixed")["inputs"][0]["shape"] == [1, 2, 2]
