"""How an inference request ends, whichever protocol brought it (http_infer.py, grpc_service.py): its count
and duration in the metrics, its memory given back, its access-log line, and the line a refusal logs. One
place, so that a REST and a gRPC request leave the same series and log lines (gRPC's say `"protocol": "grpc"`).
"""

from __future__ import annotations

import logging

from .memory import HeapTrimmer
from .model_version import ModelVersion

logger = logging.getLogger("mlgit_serving.requests")


def log_refusal(
    request_id: str | None,
    mv: ModelVersion,
    status: int,
    error: str,
    identity: str | None,
    protocol: str | None = None,
) -> None:
    """The warning a refused or failed request logs: who asked what, and why it was not served."""
    logger.warning(
        "inference request failed",
        extra={
            "request_id": request_id,
            "model": mv.name,
            "version": mv.version,
            "status": status,
            "error": error,
            "identity": identity,
            **({"protocol": protocol} if protocol else {}),
        },
    )


def finish(
    mv: ModelVersion,
    status: int,
    elapsed: float,
    body_bytes: int,
    trimmer: HeapTrimmer,
    access_log: bool,
    request_id: str | None,
    identity: str | None,
    protocol: str | None = None,
) -> None:
    """Count a finished request, give a large body's memory back, and write its access-log line if asked."""
    mv.metrics.count(status)
    mv.metrics.request_duration.observe(elapsed)
    trimmer.after_request(body_bytes)
    if access_log:
        logger.info(
            "inference request",
            extra={
                "request_id": request_id,
                "model": mv.name,
                "version": mv.version,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "identity": identity,
                **({"protocol": protocol} if protocol else {}),
            },
        )
