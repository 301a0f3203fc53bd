"""Turn a parsed OIP v2 request into numpy arrays, checking it completely against the model signature.

Every failure is a 400 naming the input, what the model expects and what came. Plain dicts and numpy
only: no per-request pydantic models on this path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .codec import decode_bytes_tensor
from .datatypes import JSON_KINDS
from .errors import BadRequest
from .signature import Signature, Tensor


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Bounds on what one request may make the server build (ServerSettings gives them)."""

    max_bytes_elements: int  # BYTES elements, all inputs together: each becomes a Python and a C++ string
    max_id_length: int  # characters of `id`, which is logged and echoed back


@dataclass(slots=True)
class DecodedRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[tuple[str, bool]]  # requested (name, binary) in response order


# A zero-size tensor passes every element count check whatever its other dimensions say, so those are
# bounded here: numpy (and onnxruntime) cannot even describe a dimension past this.
MAX_DIMENSION = 2**31 - 1


def _shape_of(item: dict[str, Any], spec: Tensor) -> list[int]:
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and 0 <= d <= MAX_DIMENSION for d in shape):
        raise BadRequest(
            f"input {spec.name!r}: shape must be a list of integers from 0 to {MAX_DIMENSION}, got {shape!r:.80}"
        )
    if spec.shape is None:  # the model does not fix the rank: onnxruntime checks what its graph needs
        return shape
    if len(shape) != len(spec.shape):
        raise BadRequest(
            f"input {spec.name!r}: expected rank {len(spec.shape)} (shape {list(spec.shape)}), "
            f"got rank {len(shape)} (shape {shape})"
        )
    for axis, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
        if want != -1 and want != got:
            raise BadRequest(f"input {spec.name!r}: expected shape {list(spec.shape)}, got {shape} (dimension {axis})")
    return shape


def _from_json(data: Any, spec: Tensor, count: int) -> np.ndarray:
    if not isinstance(data, list):
        raise BadRequest(f"input {spec.name!r}: 'data' must be a list, got {type(data).__name__}")
    if (not data or type(data[0]) is not list) and len(data) != count:
        # A flat list's length is known before numpy (or an object array of strings) is built for it.
        raise BadRequest(f"input {spec.name!r}: shape needs {count} elements, 'data' has {len(data)}")
    if spec.datatype == "BYTES":
        # Nested lists are allowed for every datatype (KServe v2), strings included.
        try:
            array = np.array(data, dtype=object) if all(type(v) is str for v in data) else _nested_strings(data)
        except ValueError:
            raise BadRequest(f"input {spec.name!r}: BYTES data must be a (nested) list of strings") from None
    else:
        try:
            array = np.array(data)
        except ValueError:
            raise BadRequest(f"input {spec.name!r}: 'data' is a ragged nested list") from None
        allowed = JSON_KINDS[spec.datatype]
        if array.dtype.kind == "f" and spec.dtype.kind == "u":
            array = _large_unsigned(data, spec)
        if array.size and array.dtype.kind not in allowed:
            raise BadRequest(f"input {spec.name!r}: expected {spec.datatype} values, got {_describe_kind(array)}")
        if array.size and array.dtype.kind in "iu" and spec.dtype.kind in "iu":
            info = np.iinfo(spec.dtype)
            low, high = array.min(), array.max()
            if low < info.min or high > info.max:
                raise BadRequest(
                    f"input {spec.name!r}: values [{low}, {high}] do not fit {spec.datatype} [{info.min}, {info.max}]"
                )
        with np.errstate(over="ignore"):  # an overflow is reported just below, as the client's mistake
            converted = array.astype(spec.dtype, copy=False)
        # A value that became inf is an overflow. JSON has no inf or NaN (the parser refuses them), but gRPC's
        # typed float contents do: those are accepted, as raw binary ones are.
        overflowed = converted.dtype.kind == "f" and converted.size and not np.isfinite(converted).all()
        if overflowed and (np.isfinite(array) & ~np.isfinite(converted)).any():
            raise BadRequest(f"input {spec.name!r}: values out of the range of {spec.datatype}")
        array = converted
    if array.size != count:
        raise BadRequest(f"input {spec.name!r}: shape needs {count} elements, 'data' has {array.size}")
    return array


def _nested_strings(data: list[Any]) -> np.ndarray:
    """A rectangular nested list of strings as a flat object array; ValueError for anything else."""
    level = list(data)
    while level and all(type(v) is list for v in level):
        if len({len(v) for v in level}) > 1:
            raise ValueError("ragged")
        level = [item for sub in level for item in sub]
    if not all(type(v) is str for v in level):
        raise ValueError("not strings")
    return np.array(level, dtype=object)


def _large_unsigned(data: list[Any], spec: Tensor) -> np.ndarray:
    """numpy infers float64 for integers past INT64's range; keep them exact when they are all integers."""
    items = np.array(data, dtype=object).ravel().tolist()
    if not all(type(v) is int for v in items):
        return np.array(data)
    try:
        return np.array(items, dtype=spec.dtype)
    except OverflowError:
        raise BadRequest(f"input {spec.name!r}: values do not fit {spec.datatype}") from None


def _describe_kind(array: np.ndarray) -> str:
    return {"b": "booleans", "i": "integers", "u": "integers", "f": "floating-point numbers", "U": "strings"}.get(
        array.dtype.kind, "mixed or null values"
    )


def _from_binary(chunk: memoryview, spec: Tensor, count: int) -> np.ndarray:
    if spec.datatype == "BYTES":
        return decode_bytes_tensor(chunk, count, spec.name)
    expected = count * spec.dtype.itemsize
    if len(chunk) != expected:
        raise BadRequest(
            f"input {spec.name!r}: shape needs {expected} bytes of {spec.datatype}, binary_data_size is {len(chunk)}"
        )
    return np.frombuffer(chunk, dtype=spec.dtype)


def check_bytes_budget(name: str, datatype: str, count: int, left: int | None) -> int | None:
    """What is left of the request's BYTES element budget after this input; checked before any string is built
    (grpc_codec.py too, before it decodes typed BYTES contents)."""
    if left is None or datatype != "BYTES":
        return left
    if count > left:
        raise BadRequest(
            f"input {name!r}: {count} BYTES elements are more than this server accepts in one request "
            f"({left} left of MLGIT_SERVING_MAX_BYTES_ELEMENTS); split the request"
        )
    return left - count


def _input(
    item: Any, signature: Signature, binary: memoryview, offset: int, bytes_left: int | None
) -> tuple[np.ndarray, str, int, int | None]:
    if not isinstance(item, dict):
        raise BadRequest(f"each entry of 'inputs' must be an object, got {item!r:.80}")
    name = item.get("name")
    spec = signature.inputs.get(name) if isinstance(name, str) else None
    if spec is None:
        raise BadRequest(f"unknown input {name!r:.80}; the model takes {list(signature.inputs)}")
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        raise BadRequest(f"input {name!r}: expected datatype {spec.datatype}, got {datatype!r:.40}")
    shape = _shape_of(item, spec)
    count = math.prod(shape)
    bytes_left = check_bytes_budget(spec.name, spec.datatype, count, bytes_left)
    parameters = item.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is None:
        if "data" not in item:
            raise BadRequest(f"input {name!r}: needs 'data' or parameters.binary_data_size")
        array = _from_json(item["data"], spec, count)
    else:
        if "data" in item:
            raise BadRequest(f"input {name!r}: has both 'data' and parameters.binary_data_size")
        if type(size) is not int or size < 0:
            raise BadRequest(f"input {name!r}: binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise BadRequest(
                f"input {name!r}: binary_data_size is {size} but only {len(binary) - offset} bytes of binary "
                "data remain in the body"
            )
        array = _from_binary(binary[offset : offset + size], spec, count)
        offset += size
    return array.reshape(shape), name, offset, bytes_left


def _requested_outputs(request: dict[str, Any], signature: Signature) -> list[tuple[str, bool]]:
    parameters = request.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise BadRequest("'parameters' must be an object")
    default_binary = bool(parameters and parameters.get("binary_data_output") is True)
    wanted = request.get("outputs")
    if wanted is None or wanted == []:  # an empty list asks for nothing in particular: all, as Triton does
        return [(name, default_binary) for name in signature.outputs]
    if not isinstance(wanted, list):
        raise BadRequest("'outputs' must be a list")
    requested: list[tuple[str, bool]] = []
    for item in wanted:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in signature.outputs:
            raise BadRequest(f"unknown output {name!r:.80}; the model has {list(signature.outputs)}")
        if any(name == seen for seen, _ in requested):
            raise BadRequest(f"output {name!r} is requested twice")
        params = item.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"output {name!r}: 'parameters' must be an object")
        if params and "classification" in params:
            raise BadRequest(f"output {name!r}: the classification extension is not supported")
        binary = params.get("binary_data", default_binary) if params else default_binary
        requested.append((name, binary is True))
    return requested


def request_id_of(request: Any, limits: RequestLimits | None) -> str | None:
    """The request's `id` when it is a string within the length bound; decode_request says what is wrong
    with any other."""
    request_id = request.get("id") if isinstance(request, dict) else None
    if not isinstance(request_id, str) or (limits is not None and len(request_id) > limits.max_id_length):
        return None
    return request_id


def decode_request(
    request: Any, binary: memoryview, signature: Signature, limits: RequestLimits | None = None
) -> DecodedRequest:
    """Check `request` against `signature` and convert its inputs. `limits` None: no bounds (the model's
    own sample.json)."""
    if not isinstance(request, dict):
        raise BadRequest("the request must be a JSON object")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    if request_id is not None and limits is not None and len(request_id) > limits.max_id_length:
        raise BadRequest(
            f"'id' is {len(request_id)} characters long; at most {limits.max_id_length} are accepted "
            "(MLGIT_SERVING_MAX_REQUEST_ID_LENGTH)"
        )
    items = request.get("inputs")
    if not isinstance(items, list) or not items:
        raise BadRequest("'inputs' must be a non-empty list")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    bytes_left = None if limits is None else limits.max_bytes_elements
    for item in items:
        array, name, offset, bytes_left = _input(item, signature, binary, offset, bytes_left)
        if name in inputs:
            raise BadRequest(f"input {name!r} appears twice")
        inputs[name] = array
    if offset != len(binary):
        raise BadRequest(
            f"the body carries {len(binary) - offset} bytes of binary data that no input's binary_data_size claims"
        )
    if len(inputs) != len(signature.inputs):
        missing = [n for n in signature.inputs if n not in inputs]
        raise BadRequest(f"missing input(s) {missing}; the model takes {list(signature.inputs)}")
    return DecodedRequest(request_id, inputs, _requested_outputs(request, signature))
