"""Process settings (environment, prefix MLGIT_SERVING_) and per-model settings (model-settings.json).

Both follow docs/contracts.md; model-settings.json is written by `mlgit render`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


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


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    datatype: Datatype
    shape: list[int] | None = Field(description="-1: a dynamic dimension; null: the model does not fix the rank.")


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)


class BatchingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    max_batch_size: int = Field(32, ge=1)
    max_delay_ms: float = Field(2.0, ge=0)
    max_queue_size: int = Field(1024, ge=1, description="Requests admitted at once; more are answered 503.")


class ThreadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intra_op: int = Field(0, ge=0)
    inter_op: int = Field(0, ge=0)


class ModelSettings(BaseModel):
    """The contents of `<repository>/<model>/model-settings.json`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    version: str | None = None
    platform: Literal["onnxruntime"] = "onnxruntime"
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None
    device: Literal["cpu", "gpu"] = "cpu"
    providers: list[ProviderSpec] = Field(default_factory=list)
    allow_cpu_fallback: bool = False
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    threads: ThreadSettings = Field(default_factory=ThreadSettings)
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1)
    warmup: bool = True

    @model_validator(mode="after")
    def _default_providers(self) -> ModelSettings:
        if not self.providers:
            names = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.device == "gpu" else []
            self.providers = [ProviderSpec(name=n) for n in names or ["CPUExecutionProvider"]]
        elif self.device == "gpu" and not any(p.name in GPU_PROVIDERS for p in self.providers):
            raise ValueError(f"device is gpu but providers name none of {', '.join(GPU_PROVIDERS)}")
        return self
