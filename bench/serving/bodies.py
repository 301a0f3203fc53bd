"""Request bodies for every protocol the benchmark speaks, and the check that a server's answer is right.

A body is (file, content type, Inference-Header-Content-Length or None): wrk posts the file as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np

Body = tuple[Path, str, int | None]


def oip_bodies(workdir: Path, name: str, row: np.ndarray) -> dict[str, Body]:
    """V2 REST bodies: JSON, and the binary tensor extension (JSON header, then raw little-endian floats)."""
    tensor = {"name": "input", "datatype": "FP32", "shape": list(row.shape)}
    json_path = workdir / f"{name}.json"
    json_path.write_text(json.dumps({"inputs": [{**tensor, "data": row.ravel().tolist()}]}))
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": row.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    binary_path = workdir / f"{name}.bin"
    binary_path.write_bytes(header + row.astype("<f4").tobytes())
    return {
        "JSON": (json_path, "application/json", None),
        "binary": (binary_path, "application/octet-stream", len(header)),
    }


def bentoml_body(workdir: Path, name: str, row: np.ndarray) -> dict[str, Body]:
    """BentoML's own API: the argument by name, the array as nested lists."""
    path = workdir / f"{name}.bentoml.json"
    path.write_text(json.dumps({"input": row.tolist()}))
    return {"JSON": (path, "application/json", None)}


def grpc_request(workdir: Path, model: str, row: np.ndarray) -> Path:
    """A ModelInferRequest as ghz reads it (`-B`: binary protobuf), the tensor in raw_input_contents."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name=model)
    tensor = request.inputs.add(name="input", datatype="FP32")
    tensor.shape.extend(row.shape)
    request.raw_input_contents.append(row.astype("<f4").tobytes())
    path = workdir / f"{model}-{row.shape[0]}.grpc.bin"
    path.write_bytes(request.SerializeToString())
    return path


def grpc_protoset(workdir: Path) -> Path:
    """The OIP v2 gRPC service (KServe's and Triton's `inference` package) as a FileDescriptorSet for ghz,
    taken from tritonclient's compiled descriptors: no .proto file to ship."""
    from google.protobuf import descriptor_pb2
    from tritonclient.grpc import model_config_pb2, service_pb2

    files = descriptor_pb2.FileDescriptorSet()
    for module in (model_config_pb2, service_pb2):
        module.DESCRIPTOR.CopyToProto(files.file.add())
    path = workdir / "inference.protoset"
    path.write_bytes(files.SerializeToString())
    return path


def post(url: str, body: Body) -> httpx.Response:
    path, content_type, header_length = body
    headers = {"Content-Type": content_type}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = str(header_length)
    return httpx.post(url, content=path.read_bytes(), headers=headers, timeout=30)


def check_ok(url: str, body: Body) -> None:
    response = post(url, body)
    assert response.status_code == 200, response.text[:300]


def decode_output(response: httpx.Response) -> np.ndarray:
    """The first output tensor of a V2 REST answer (JSON, or binary per the extension), or BentoML's array."""
    length = response.headers.get("Inference-Header-Content-Length")
    if length is not None:
        header = json.loads(response.content[: int(length)])
        (output, *_) = header["outputs"]
        size = output["parameters"]["binary_data_size"]
        raw = response.content[int(length) : int(length) + size]
        return np.frombuffer(raw, dtype="<f4").reshape(output["shape"])
    answer = response.json()
    if isinstance(answer, list):  # BentoML returns the array itself
        return np.asarray(answer, dtype=np.float32)
    (output, *_) = answer["outputs"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def check_answer(url: str, body: Body, expected: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> str | None:
    """None when the server answers `body` with `expected` (raw onnxruntime's output), else why not."""
    try:
        response = post(url, body)
    except httpx.HTTPError as exc:
        return f"{url}: {exc!r}"
    if response.status_code != 200:
        return f"{url}: HTTP {response.status_code}: {response.text[:300]}"
    try:
        got = decode_output(response)
    except (KeyError, ValueError, TypeError) as exc:
        return f"{url}: unreadable answer ({exc!r}): {response.text[:300]}"
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=rtol, atol=atol):
        return f"{url}: output {got.ravel()[:4]}... differs from raw onnxruntime's {expected.ravel()[:4]}..."
    return None


def check_grpc_answer(target: str, model: str, row: np.ndarray, expected: np.ndarray) -> str | None:
    """The same check over V2 gRPC with tritonclient.grpc, raw tensors both ways."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(target)
    try:
        tensor = grpcclient.InferInput("input", list(row.shape), "FP32")
        tensor.set_data_from_numpy(row)
        got = client.infer(model, [tensor]).as_numpy("output")
    except InferenceServerException as exc:
        return f"grpc {target} {model}: {exc}"
    finally:
        client.close()
    if got is None or got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        return f"grpc {target} {model}: output differs from raw onnxruntime's"
    return None
