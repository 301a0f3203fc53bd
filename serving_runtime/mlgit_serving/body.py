"""Reading request bodies: size limit before and after decompression, gzip and deflate."""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request

from .errors import BadRequest, ClientClosed, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

if TYPE_CHECKING:
    from .http_protocol import BodyBuffer

# Compressed input is fed to zlib this much at a time: what zlib hands back past a member's end
# (`unused_data`) is then a copy of at most this, not of the whole rest of the body, so inflating
# stays linear in the body's size however many members it has.
_INFLATE_CHUNK = 64 * 1024


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds this model's max_request_bytes ({limit})")


def _inflate(body: bytes, wbits: int, limit: int, encoding: str, max_members: int) -> bytes:
    """Decompress, member after member for gzip (RFC 1952 allows several), within `limit` bytes in all."""
    view = memoryview(body)
    parts: list[bytes] = []
    size = offset = members = 0
    while members == 0 or offset < len(view):
        if members == max_members:
            raise BadRequest(
                f"{encoding} request body has more than {max_members} members "
                "(MLGIT_SERVING_MAX_GZIP_MEMBERS); compress the body as one member"
            )
        if members and encoding != "gzip":
            raise BadRequest(f"{encoding} request body has {len(view) - offset} bytes after its end")
        members += 1
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            if offset == len(view):
                raise BadRequest(f"{encoding} request body is truncated")
            chunk = view[offset : offset + _INFLATE_CHUNK]
            try:
                # Asking for one byte past the limit tells a body at the limit from one over it.
                data = inflater.decompress(chunk, limit + 1 - size)
            except zlib.error as exc:
                raise BadRequest(f"request body is not valid {encoding} data: {exc}") from None
            size += len(data)
            if size > limit:
                raise _too_large(limit)
            if data:
                parts.append(data)
            offset += len(chunk) - len(inflater.unused_data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def decompress(body: bytes, encoding: str | None, limit: int, max_members: int) -> bytes:
    """The body decoded per its Content-Encoding, at most `limit` bytes and `max_members` gzip members.
    CPU-bound: callers run large bodies in a worker thread (decoding.py)."""
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, encoding, max_members)
    if encoding == "deflate":
        # HTTP's "deflate" is the zlib format, but some clients send a raw deflate stream.
        zlib_format = len(body) >= 2 and (body[0] << 8 | body[1]) % 31 == 0
        return _inflate(body, zlib.MAX_WBITS if zlib_format else -zlib.MAX_WBITS, limit, encoding, max_members)
    raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")


def _buffer_of(request: Request) -> BodyBuffer | None:
    extensions = request.scope.get("extensions")
    return None if extensions is None else extensions.get("mlgit.body")


async def read_body(request: Request, limit: int) -> bytes | bytearray:
    """The body as sent (still compressed), refusing anything over `limit` bytes before reading it where
    possible; in one piece from http_protocol.BodyBuffer when the server offers it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    buffer = _buffer_of(request)
    if buffer is not None and declared is not None:  # a declared length within the limit: take it whole
        buffer.expect()
        while not buffer.complete:
            if (await request.receive())["type"] == "http.disconnect":
                raise ClientDisconnect
        return buffer.take()
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if chunk:
            chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def receive_body(request: Request, limit: int, timeout: float, what: str = "request") -> bytes | bytearray:
    """read_body within `timeout` seconds: a stalled upload is a 408, a client that goes away a 499."""
    buffer = _buffer_of(request)
    if buffer is not None and buffer.complete:  # it came with its head: no wait, so no timer (~10 us a request)
        return await read_body(request, limit)
    try:
        async with asyncio.timeout(timeout):
            return await read_body(request, limit)
    except TimeoutError:
        raise RequestTimeout(f"the {what} body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise ClientClosed(f"the client closed the connection before its {what} body arrived") from None
