"""Sampled request/response logging for auditing and debugging, with a size cap per body."""

from __future__ import annotations

import logging
import random

logger = logging.getLogger("mlgit_serving.audit")


def _preview(body: bytes, header_length: int | None, limit: int) -> str:
    text = body[: header_length if header_length is not None else len(body)][:limit]
    preview = text.decode("utf-8", "replace")
    if header_length is not None:
        preview += f" <+{len(body) - header_length} bytes of binary tensor data>"
    elif len(body) > limit:
        preview += f" <truncated, {len(body)} bytes in all>"
    return preview


class AuditLog:
    def __init__(self, sample_rate: float, max_bytes: int) -> None:
        self.sample_rate = sample_rate
        self.max_bytes = max_bytes
        self._random = random.Random()

    def sampled(self) -> bool:
        return self.sample_rate > 0 and self._random.random() < self.sample_rate

    def record(
        self,
        *,
        request_id: str | None,
        model: str,
        version: str,
        status: int,
        request: bytes,
        request_header_length: int | None,
        response: bytes,
        response_header_length: int | None,
    ) -> None:
        logger.info(
            "inference audit",
            extra={
                "request_id": request_id,
                "model": model,
                "version": version,
                "status": status,
                "request": _preview(request, request_header_length, self.max_bytes),
                "response": _preview(response, response_header_length, self.max_bytes),
            },
        )
