"""Reading request bodies: size limit before and after decompression, gzip and deflate."""

from __future__ import annotations

import zlib

from starlette.requests import Request

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds this model's max_request_bytes ({limit})")


def _inflate(body: bytes, wbits: int, limit: int, encoding: str) -> bytes:
    """Decompress, member after member for gzip (RFC 1952 allows several), within `limit` bytes in all."""
    parts, size, rest = [], 0, body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise BadRequest(f"request body is not valid {encoding} data: {exc}") from None
        size += len(data)
        if size > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise BadRequest(f"{encoding} request body is truncated")
        parts.append(data)
        rest = inflater.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if encoding != "gzip":
            raise BadRequest(f"{encoding} request body has {len(rest)} bytes after its end")


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, encoding)
    if encoding == "deflate":
        # HTTP's "deflate" is the zlib format, but some clients send a raw deflate stream.
        zlib_format = len(body) >= 2 and (body[0] << 8 | body[1]) % 31 == 0
        return _inflate(body, zlib.MAX_WBITS if zlib_format else -zlib.MAX_WBITS, limit, encoding)
    raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")


async def read_body(request: Request, limit: int) -> bytes:
    """The (decompressed) body, refusing anything over `limit` bytes before reading it where possible."""
    headers = request.headers
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if chunk:
            chunks.append(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = headers.get("content-encoding")
    return body if encoding is None else _decompress(body, encoding, limit)
