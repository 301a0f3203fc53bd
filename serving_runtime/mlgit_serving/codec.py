"""Wire format of OIP v2 REST bodies: JSON header plus the binary tensor data extension."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from .errors import BadRequest

_U32 = struct.Struct("<I")


def parse_header_length(value: str | None) -> int | None:
    """Inference-Header-Content-Length as a number: ASCII digits only (int() would also take "1_0", "+10"
    and other scripts' digits)."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 20):
        raise BadRequest(f"Inference-Header-Content-Length must be an integer in ASCII digits, got {value[:40]!r}")
    return int(value)


def split_body(body: bytes, length: int | None) -> tuple[Any, memoryview]:
    """Parse the JSON header (the first `length` bytes, or all of the body when None); the rest of the body
    (binary tensor data) is returned as a view."""
    view = memoryview(body)
    if length is None:
        json_part, binary = view, view[len(body) :]
    else:
        if not 0 < length <= len(body):
            raise BadRequest(f"Inference-Header-Content-Length is {length} but the body has {len(body)} bytes")
        json_part, binary = view[:length], view[length:]
    try:
        return orjson.loads(json_part), binary
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def decode_bytes_tensor(chunk: memoryview, count: int, name: str) -> np.ndarray:
    """BYTES in binary form: each element is a 4-byte little-endian length then that many bytes."""
    if 4 * count > len(chunk):  # every element has its length prefix: refuse before building any string
        raise BadRequest(f"input {name!r}: shape needs {count} BYTES elements, binary data has only {len(chunk)} bytes")
    items: list[str] = []
    offset, end = 0, len(chunk)
    while offset < end and len(items) < count:
        if offset + 4 > end:
            raise BadRequest(f"input {name!r}: binary BYTES data ends inside an element's length prefix")
        (size,) = _U32.unpack_from(chunk, offset)
        offset += 4
        if offset + size > end:
            raise BadRequest(f"input {name!r}: binary BYTES element of {size} bytes runs past the data")
        try:
            items.append(str(chunk[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"input {name!r}: BYTES element {len(items)} is not valid UTF-8") from None
        offset += size
    if len(items) != count:
        raise BadRequest(f"input {name!r}: shape needs {count} BYTES elements, binary data has {len(items)}")
    if offset < end:
        raise BadRequest(f"input {name!r}: binary data has more than the {count} BYTES elements its shape needs")
    return np.array(items, dtype=object)


def _bytes_items(array: np.ndarray) -> list[bytes]:
    return [v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist()]


def _raw(array: np.ndarray, datatype: str) -> bytes | memoryview:
    if datatype == "BYTES":
        return b"".join(_U32.pack(len(b)) + b for b in _bytes_items(array))
    return memoryview(np.ascontiguousarray(array)).cast("B")


def _json_data(array: np.ndarray, datatype: str) -> Any:
    if datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.ravel().tolist()]
    return array.ravel()


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[tuple[str, str, np.ndarray, bool]],
) -> tuple[bytes, int | None]:
    """Serialise (name, datatype, array, binary) outputs; returns the body and the JSON header's length
    when some output travels as binary data (None for a pure JSON body)."""
    described = []
    chunks: list[bytes | memoryview] = []
    for name, datatype, array, binary in outputs:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = _raw(array, datatype)
            entry["parameters"] = {"binary_data_size": len(raw) if isinstance(raw, bytes) else raw.nbytes}
            chunks.append(raw)
        else:
            entry["data"] = _json_data(array, datatype)
        described.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = described
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)
