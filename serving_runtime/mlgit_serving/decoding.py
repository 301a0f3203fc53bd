"""From a request body as received to checked numpy inputs: decompress, parse, validate.

This is CPU-bound work that holds the GIL (orjson, numpy conversions, per-element BYTES decoding): a
64 MiB JSON body takes seconds. Large or compressed bodies are decoded in a worker thread, so the event
loop (readiness probes included) keeps answering, and one at a time: two at once would take as long as
one after the other, and hold twice the memory at their peak.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.datastructures import Headers

from .body import decompress
from .codec import parse_header_length, split_body
from .settings import ServerSettings
from .signature import Signature
from .validation import DecodedRequest, RequestLimits, decode_request, request_id_of

HEADER_LENGTH = "inference-header-content-length"
# Below this much JSON (or binary BYTES data) decoding takes about a millisecond: a thread hop would
# cost more than it saves.
OFFLOAD_BYTES = 256 * 1024


@dataclass(slots=True)
class Received:
    """What decoding learnt about a request, filled in as it goes, so that a failure still has the id."""

    size: int = 0  # the larger of the body as sent and decompressed
    body: bytes = b""  # decompressed
    header_length: int | None = None
    request_id: str | None = None


class RequestDecoder:
    def __init__(self, settings: ServerSettings, large_decodes: asyncio.Semaphore) -> None:
        self._max_members = settings.max_gzip_members
        self._limits = RequestLimits(settings.max_bytes_elements, settings.max_request_id_length)
        self._heavy = large_decodes  # ServingState's: gRPC's large decodes take turns with these

    async def decode(
        self, received: Received, raw: bytes, headers: Headers, signature: Signature, max_bytes: int
    ) -> DecodedRequest:
        """`raw` is the body as sent; raises ServingError (400, 413, 415) for a body the model cannot take."""
        received.size = len(raw)
        encoding = headers.get("content-encoding")
        received.header_length = parse_header_length(headers.get(HEADER_LENGTH))
        if not _heavy(raw, encoding, received.header_length, signature):
            return self._decode(received, raw, encoding, signature, max_bytes)
        async with self._heavy:
            return await asyncio.to_thread(self._decode, received, raw, encoding, signature, max_bytes)

    def _decode(
        self, received: Received, raw: bytes, encoding: str | None, signature: Signature, max_bytes: int
    ) -> DecodedRequest:
        body = received.body = decompress(raw, encoding, max_bytes, self._max_members)
        received.size = max(received.size, len(body))
        parsed, binary = split_body(body, received.header_length)
        received.request_id = request_id_of(parsed, self._limits)
        return decode_request(parsed, binary, signature, self._limits)


def _heavy(raw: bytes, encoding: str | None, header_length: int | None, signature: Signature) -> bool:
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        return True  # a small compressed body can inflate to max_request_bytes
    json_bytes = len(raw) if header_length is None else header_length
    if json_bytes >= OFFLOAD_BYTES:
        return True
    # Binary numeric tensors are numpy views (no work); binary BYTES are decoded element by element.
    return len(raw) >= OFFLOAD_BYTES and any(t.datatype == "BYTES" for t in signature.inputs.values())
