"""OIP v2 gRPC messages to and from what the REST path works with.

A ModelInferRequest becomes the dict and binary data that validation.decode_request checks for REST, so
both protocols accept and refuse the same requests with the same messages: raw_input_contents travel as
binary tensor data (one entry per input), typed InferTensorContents as a JSON `data` list. Outputs always
go back as raw_output_contents, the representation Triton and tritonclient.grpc use.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from .errors import BadRequest
from .proto import grpc_predict_v2_pb2 as pb
from .signature import Signature
from .validation import DecodedRequest, RequestLimits, check_bytes_budget, decode_request

_U32 = struct.Struct("<I")

# The InferTensorContents field each datatype travels in; FP16 has none (raw only, as the proto says).
CONTENTS_FIELDS = {
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


def parameters(params: Any) -> dict[str, Any]:
    """A map<string, InferParameter> as the plain values a REST request's `parameters` object holds."""
    return {
        key: getattr(value, value.WhichOneof("parameter_choice") or "string_param") for key, value in params.items()
    }


def _typed_data(tensor: Any, bytes_left: int | None) -> tuple[list[Any], int | None]:
    """An input's typed contents as a JSON-like list, and what is left of the request's BYTES budget."""
    name, datatype = tensor.name, tensor.datatype
    field = CONTENTS_FIELDS.get(datatype)
    if field is None and datatype == "FP16":
        raise BadRequest(f"input {name!r}: FP16 has no typed contents field; send it in raw_input_contents")
    others = [f.name for f, _ in tensor.contents.ListFields() if f.name != field]
    if others:
        where = f"contents.{field}" if field else "raw_input_contents"
        raise BadRequest(f"input {name!r}: {datatype} data goes in {where}, not contents.{others[0]}")
    if field is None:  # an unknown datatype: decode_request names what the model expects instead
        return [], bytes_left
    values = getattr(tensor.contents, field)
    if datatype != "BYTES":
        return list(values), bytes_left
    # Each element is at least two bytes on the wire: bound them before any string is built, as REST does.
    left = check_bytes_budget(name, datatype, len(values), bytes_left)
    items = []
    for index, value in enumerate(values):
        try:
            items.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"input {name!r}: BYTES element {index} is not valid UTF-8") from None
    return items, left


def _rest_form(request: Any, limits: RequestLimits) -> tuple[dict[str, Any], list[bytes]]:
    """The REST body's JSON part a ModelInferRequest stands for, and its binary tensor data (one entry per
    input, none for typed contents); raises BadRequest."""
    # Each read of a protobuf bytes field copies it into a new bytes object: read each one once.
    raw = list(request.raw_input_contents)
    inputs = request.inputs
    if raw and len(raw) != len(inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for {len(inputs)} inputs: give one per input, in order"
        )
    items: list[dict[str, Any]] = []
    bytes_left: int | None = limits.max_bytes_elements
    for index, tensor in enumerate(inputs):
        item: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        if raw:
            if tensor.HasField("contents"):
                raise BadRequest(f"input {tensor.name!r}: has both contents and raw_input_contents")
            item["parameters"] = {"binary_data_size": len(raw[index])}
        else:
            item["data"], bytes_left = _typed_data(tensor, bytes_left)
        items.append(item)
    body: dict[str, Any] = {"inputs": items}
    if request.id:
        body["id"] = request.id
    if request.parameters:
        body["parameters"] = parameters(request.parameters)
    if request.outputs:
        body["outputs"] = [{"name": o.name, "parameters": parameters(o.parameters)} for o in request.outputs]
    return body, raw


def decode_infer_request(request: Any, signature: Signature, limits: RequestLimits) -> DecodedRequest:
    """Check a ModelInferRequest against `signature` as decode_request checks a REST body; raises BadRequest."""
    body, raw = _rest_form(request, limits)
    # One input (the common case) is decoded straight from its bytes; several are joined, as REST sends them.
    binary = memoryview(raw[0] if len(raw) == 1 else b"".join(raw))
    return decode_request(body, binary, signature, limits)


def rest_body(request: Any, limits: RequestLimits) -> tuple[bytes, int | None]:
    """The REST body a served ModelInferRequest stands for, as the audit and payload logs record REST's: the
    OIP v2 JSON with raw_input_contents as binary tensor data after it (and the JSON part's length), or a pure
    JSON body (None) for typed contents."""
    body, raw = _rest_form(request, limits)
    header = orjson.dumps(body)
    return (header + b"".join(raw), len(header)) if raw else (header, None)


def _raw(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        items = (v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist())
        return b"".join(_U32.pack(len(b)) + b for b in items)
    return array.tobytes()  # C order, whatever the array's strides


def infer_response(
    model_name: str, model_version: str, request_id: str | None, outputs: list[tuple[str, str, np.ndarray]]
) -> Any:
    """A ModelInferResponse carrying (name, datatype, array) outputs as raw_output_contents."""
    return pb.ModelInferResponse(
        model_name=model_name,
        model_version=model_version,
        id=request_id or "",
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=array.shape)
            for name, datatype, array in outputs
        ],
        raw_output_contents=[_raw(array, datatype) for _, datatype, array in outputs],
    )
