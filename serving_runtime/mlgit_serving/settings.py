"""Process settings (environment, prefix MLGIT_SERVING_), as docs/contracts.md describes them.

The per-model settings (model-settings.json, written by `mlgit render`) are the contract in model_settings.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """Settings of the server process. Precedence: `serve()` keyword arguments > environment > default."""

    model_config = SettingsConfigDict(env_prefix="MLGIT_SERVING_", extra="forbid")

    model_repository: Path = Field(Path("/models"), description="Root of the model repository.")
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on (0 picks a free one).")
    drain_seconds: float = Field(
        20.0, ge=0, description="Longest a SIGTERM waits for in-flight and queued requests before exiting."
    )
    shutdown_delay_seconds: float = Field(
        0.0,
        ge=0,
        description="After SIGTERM (not Ctrl-C), keep accepting requests (while /v2/health/ready says 503) "
        "this long so that load balancers stop routing here first; counted within drain_seconds.",
    )
    request_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest an inference request's body may take to arrive before a 408: a stalled "
        "upload holds a queue slot (max_queue_size) meanwhile.",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    access_log: bool = Field(False, description="Log one JSON line per inference request (errors always are).")
    audit_sample_rate: float = Field(
        0.0, ge=0, le=1, description="Fraction of inference requests whose request and response are logged."
    )
    audit_max_bytes: int = Field(4096, ge=0, description="Cap on each logged request or response body.")
