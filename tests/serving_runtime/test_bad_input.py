"""Client mistakes get a 4xx naming what was wrong, as OIP `{"error": ...}`, and the server stays up."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from .conftest import ONNX_TYPES, RunningServer

GOOD = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}


def _with(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**GOOD, **changes}]}


def _binary(header: dict[str, Any], payload: bytes, header_length: int | None = None) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    length = len(head) if header_length is None else header_length
    return head + payload, {"Inference-Header-Content-Length": str(length)}


GOOD_BODY = json.dumps(_with()).encode()
ROWSUM_X = {"name": "x", "datatype": "FP32"}
FOUR_FLOATS = np.ones(4, dtype=np.float32).tobytes()
BINARY_INPUT = {"name": "input", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}

# (id, model, JSON request or (raw body, headers), status, text the error must contain)
CASES: list[tuple[str, str, Any, int, str]] = [
    ("wrong-datatype", "iris", _with(datatype="INT32"), 400, "input 'input': expected datatype FP32, got 'INT32'"),
    ("unknown-datatype", "iris", _with(datatype="FLOAT"), 400, "expected datatype FP32"),
    ("wrong-rank", "iris", _with(shape=[4]), 400, "expected rank 2"),
    ("wrong-fixed-dim", "iris", _with(shape=[2, 2]), 400, "expected shape [-1, 4], got [2, 2]"),
    ("negative-dim", "iris", _with(shape=[-1, 4]), 400, "shape must be a list of integers from 0 to"),
    ("shape-not-list", "iris", _with(shape="1,4"), 400, "shape must be a list"),
    ("float-dim", "iris", _with(shape=[1.0, 4]), 400, "shape must be a list"),
    ("too-few-elements", "iris", _with(data=[1.0, 2.0]), 400, "shape needs 4 elements, 'data' has 2"),
    ("too-many-elements", "iris", _with(shape=[1, 4], data=[1.0] * 8), 400, "shape needs 4 elements"),
    ("strings-for-numbers", "iris", _with(data=["a", "b", "c", "d"]), 400, "expected FP32 values, got strings"),
    ("numeric-strings", "iris", _with(data=["1", "2", "3", "4"]), 400, "got strings"),
    ("nulls", "iris", _with(data=[1.0, None, 1.0, 1.0]), 400, "mixed or null"),
    ("booleans-for-floats", "iris", _with(data=[True, False, True, True]), 400, "got booleans"),
    ("ragged", "iris", _with(data=[[1.0, 2.0], [3.0]]), 400, "ragged"),
    ("data-not-list", "iris", _with(data=5), 400, "'data' must be a list"),
    (
        "no-data",
        "iris",
        {"inputs": [{k: v for k, v in GOOD.items() if k != "data"}]},
        400,
        "needs 'data' or parameters.binary_data_size",
    ),
    (
        "missing-input",
        "types",
        {"inputs": [{"name": "in_FP32", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}]},
        400,
        "missing input(s) ['in_BOOL'",
    ),
    ("extra-input", "iris", {"inputs": [GOOD, {**GOOD, "name": "extra"}]}, 400, "unknown input 'extra'"),
    ("duplicate-input", "iris", {"inputs": [GOOD, GOOD]}, 400, "input 'input' appears twice"),
    ("no-inputs", "iris", {"inputs": []}, 400, "'inputs' must be a non-empty list"),
    ("inputs-not-list", "iris", {"inputs": GOOD}, 400, "'inputs' must be a non-empty list"),
    ("input-not-object", "iris", {"inputs": [5]}, 400, "each entry of 'inputs' must be an object"),
    ("body-is-array", "iris", [GOOD], 400, "the request must be a JSON object"),
    ("id-not-string", "iris", {**_with(), "id": 5}, 400, "'id' must be a string"),
    ("parameters-not-object", "iris", {**_with(), "parameters": [1]}, 400, "'parameters' must be an object"),
    ("unknown-output", "iris", {**_with(), "outputs": [{"name": "nope"}]}, 400, "unknown output 'nope'"),
    (
        "duplicate-output",
        "iris",
        {**_with(), "outputs": [{"name": "label"}, {"name": "label"}]},
        400,
        "output 'label' is requested twice",
    ),
    (
        "classification",
        "iris",
        {**_with(), "outputs": [{"name": "label", "parameters": {"classification": 2}}]},
        400,
        "classification extension is not supported",
    ),
    ("int8-overflow", "types", None, 400, "do not fit INT8"),
    (
        "floats-for-ints",
        "lookup",
        {"inputs": [{"name": "index", "datatype": "INT64", "shape": [1], "data": [1.5]}]},
        400,
        "expected INT64 values, got floating-point numbers",
    ),
    ("numbers-for-bytes", "types", None, 400, "BYTES data must be a (nested) list of strings"),
    (
        "index-out-of-range",
        "lookup",
        {"inputs": [{"name": "index", "datatype": "INT64", "shape": [1], "data": [20]}]},
        400,
        "inference failed for this input",
    ),
    ("not-json", "iris", (b"hello", {}), 400, "request body is not valid JSON"),
    ("truncated-json", "iris", (json.dumps(_with()).encode()[:-7], {}), 400, "request body is not valid JSON"),
    ("empty-body", "iris", (b"", {}), 400, "not valid JSON"),
    (
        "header-length-too-long",
        "iris",
        _binary({"inputs": [BINARY_INPUT]}, FOUR_FLOATS, 10_000),
        400,
        "Inference-Header-Content-Length is 10000 but the body has",
    ),
    (
        "header-length-zero",
        "iris",
        _binary({"inputs": [BINARY_INPUT]}, FOUR_FLOATS, 0),
        400,
        "Inference-Header-Content-Length is 0",
    ),
    ("header-length-not-int", "iris", (b"{}", {"Inference-Header-Content-Length": "abc"}), 400, "must be an integer"),
    ("header-length-cuts-json", "iris", _binary({"inputs": [BINARY_INPUT]}, FOUR_FLOATS, 20), 400, "not valid JSON"),
    (
        "binary-size-past-body",
        "iris",
        _binary({"inputs": [BINARY_INPUT]}, FOUR_FLOATS[:8]),
        400,
        "binary_data_size is 16 but only 8 bytes of binary data remain",
    ),
    (
        "binary-size-vs-shape",
        "iris",
        _binary({"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": 8}}]}, FOUR_FLOATS[:8]),
        400,
        "shape needs 16 bytes of FP32, binary_data_size is 8",
    ),
    (
        "binary-trailing-bytes",
        "iris",
        _binary({"inputs": [BINARY_INPUT]}, FOUR_FLOATS + b"xx"),
        400,
        "2 bytes of binary data that no input's binary_data_size claims",
    ),
    (
        "binary-size-negative",
        "iris",
        _binary({"inputs": [{**BINARY_INPUT, "parameters": {"binary_data_size": -4}}]}, FOUR_FLOATS),
        400,
        "binary_data_size must be a non-negative integer",
    ),
    (
        "binary-and-data",
        "iris",
        _binary({"inputs": [{**BINARY_INPUT, "data": [1, 2, 3, 4]}]}, FOUR_FLOATS),
        400,
        "has both 'data' and parameters.binary_data_size",
    ),
    ("bytes-prefix-past-end", "types", None, 400, "runs past the data"),
    ("bad-gzip", "iris", (b"not gzip at all", {"Content-Encoding": "gzip"}), 400, "not valid gzip data"),
    (
        "truncated-gzip",
        "iris",
        (gzip.compress(json.dumps(_with()).encode())[:-12], {"Content-Encoding": "gzip"}),
        400,
        "gzip request body is truncated",
    ),
    ("unknown-encoding", "iris", (b"{}", {"Content-Encoding": "br"}), 415, "unsupported Content-Encoding 'br'"),
    (
        "body-over-limit",
        "small",
        _with(data=[1.0] * 400, shape=[100, 4]),
        413,
        "exceeds this model's max_request_bytes",
    ),
    (
        "gzip-bomb",
        "small",
        (gzip.compress(b" " * 100_000 + json.dumps(_with()).encode()), {"Content-Encoding": "gzip"}),
        413,
        "max_request_bytes (512)",
    ),
    (
        "zero-size-with-huge-dim",
        "rowsum",
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 2**63], "data": []}]},
        400,
        "shape must be a list of integers from 0 to 2147483647",
    ),
    (
        "gzip-trailing-garbage",
        "iris",
        (gzip.compress(json.dumps(_with()).encode()) + b"garbage", {"Content-Encoding": "gzip"}),
        400,
        "not valid gzip data",
    ),
    (
        "deflate-trailing-bytes",
        "iris",
        (zlib.compress(json.dumps(_with()).encode()) + b"xy", {"Content-Encoding": "deflate"}),
        400,
        "deflate request body has 2 bytes after its end",
    ),
    ("unknown-model", "nope", _with(), 404, "unknown model 'nope'"),
]


def _types_request(datatype: str, data: list[Any]) -> dict[str, Any]:
    return {
        "inputs": [{"name": "in_INT8", "datatype": "INT8", "shape": [1, 2], "data": [1, 2]}]
        + [
            {
                "name": f"in_{t}",
                "datatype": t,
                "shape": [1, 2],
                "data": data
                if t == datatype
                else (["a", "b"] if t == "BYTES" else [True, False] if t == "BOOL" else [1, 2]),
            }
            for t in (
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
                "BYTES",
            )
        ]
    }


def _request_for(case_id: str, request: Any) -> Any:
    if case_id == "int8-overflow":
        body = _types_request("BYTES", ["a", "b"])
        body["inputs"][0]["data"] = [1, 300]
        return body
    if case_id == "numbers-for-bytes":
        return _types_request("BYTES", [1, 2])
    if case_id == "bytes-prefix-past-end":
        body = _types_request("FP32", [1.0, 2.0])
        body["inputs"][-1] = {
            "name": "in_BYTES",
            "datatype": "BYTES",
            "shape": [1, 2],
            "parameters": {"binary_data_size": 9},
        }
        return _binary(body, struct.pack("<I", 1) + b"a" + struct.pack("<I", 10))
    return request


@pytest.mark.parametrize(("case_id", "model", "request_body", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_request(
    http: httpx.Client, case_id: str, model: str, request_body: Any, status: int, message: str
) -> None:
    request_body = _request_for(case_id, request_body)
    if isinstance(request_body, tuple):
        content, headers = request_body
    else:
        content, headers = json.dumps(request_body).encode(), {"Content-Type": "application/json"}
    response = http.post(f"/v2/models/{model}/infer", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str) and message in error


def test_unknown_version_and_paths(http: httpx.Client) -> None:
    response = http.post("/v2/models/iris/versions/9/infer", json=_with())
    assert response.status_code == 404 and "has no version '9'" in response.json()["error"]
    assert http.get("/v2/models/iris/versions/9").status_code == 404
    response = http.get("/v2/nowhere")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}
    response = http.get("/v2/models/iris/infer")
    assert response.status_code == 405 and "error" in response.json()


def test_oversized_chunked_body_without_length(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 100

    response = http.post("/v2/models/small/infer", content=chunks())
    assert response.status_code == 413


def test_deflate_raw_and_zlib(http: httpx.Client) -> None:
    body = json.dumps(_with()).encode()
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    for encoded in (zlib.compress(body), raw.compress(body) + raw.flush()):
        response = http.post(
            "/v2/models/iris/versions/1/infer", content=encoded, headers={"Content-Encoding": "deflate"}
        )
        assert response.status_code == 200, response.text


def test_multi_member_gzip_is_one_body(http: httpx.Client) -> None:
    body = json.dumps(_with()).encode()
    encoded = gzip.compress(body[:20]) + gzip.compress(body[20:])
    response = http.post("/v2/models/iris/infer", content=encoded, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("model", ["iris", "iris_batched"])
def test_empty_requested_outputs_means_all_outputs(http: httpx.Client, model: str) -> None:
    response = http.post(f"/v2/models/{model}/infer", json={**_with(), "outputs": []})
    assert response.status_code == 200, response.text
    assert [o["name"] for o in response.json()["outputs"]] == ["label", "probabilities"]


def test_server_survives_bad_input(server: RunningServer, http: httpx.Client) -> None:
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    response = http.post("/v2/models/iris/versions/1/infer", json={**_with(), "id": "after"})
    assert response.status_code == 200 and response.json()["id"] == "after"
    metrics = http.get("/metrics").text
    assert 'mlgit_inference_requests_total{model="iris",status="400",version="2"}' in metrics
    assert 'status="500"' not in metrics


def _all_types(**overrides: list[Any]) -> dict[str, Any]:
    """One [1, 2] row per datatype for the `types` identity model, nested as a client may send it."""
    values: dict[str, list[Any]] = {t: [[0, 1]] for t in ONNX_TYPES}
    values.update({"BOOL": [[True, False]], "BYTES": [["a", "b"]], **overrides})
    inputs = [{"name": f"in_{t}", "datatype": t, "shape": [1, 2], "data": v} for t, v in values.items()]
    return {"inputs": inputs}


def test_nested_json_data_is_accepted_for_every_datatype_bytes_included(http: httpx.Client) -> None:
    response = http.post("/v2/models/types/infer", json=_all_types())
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert outputs["out_BYTES"] == ["a", "b"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"FP16": [[1e6, 0]]}, "input 'in_FP16': values out of the range of FP16"),
        ({"FP32": [[3.4e39, 0]]}, "input 'in_FP32': values out of the range of FP32"),
        ({"BYTES": [["a"], ["b", "c"]]}, "input 'in_BYTES': BYTES data must be a (nested) list of strings"),
        ({"BYTES": [["a", 1]]}, "input 'in_BYTES': BYTES data must be a (nested) list of strings"),
    ],
)
def test_json_values_that_do_not_fit_are_refused(http: httpx.Client, overrides: dict, message: str) -> None:
    response = http.post("/v2/models/types/infer", json=_all_types(**overrides))
    assert response.status_code == 400 and message in response.json()["error"], response.text
