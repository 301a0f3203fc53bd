"""model-settings.json: the one contract between `mlgit render` (which writes it) and the serving runtime
(which reads it); docs/contracts.md describes it.

Both distributions ship this very file: it is mlgit_serving's module, and cli/mlgit/model_settings.py is a
symlink to it (a wheel carries a copy). So it imports nothing but pydantic and the standard library, and
neither package by name: the runtime must never import the CLI, and the CLI must not need the web stack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
Device = Literal["cpu", "gpu"]
ProviderName = Literal["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
GPU_PROVIDERS: tuple[ProviderName, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class _Contract(BaseModel):
    # An unknown key is an error on both sides: a misspelt setting never goes silently unread.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class TensorSpec(_Contract):
    """One input or output of the model, as the Open Inference Protocol describes it."""

    name: str = Field(description="Tensor name, exactly as in the ONNX graph.")
    datatype: Datatype = Field(description="Open Inference Protocol v2 datatype, e.g. FP32, INT64, BYTES.")
    shape: list[int] | None = Field(
        description="Dimensions; -1 marks a dynamic dimension (e.g. the batch). null: the model does not fix "
        "the rank, so requests of any shape are passed to onnxruntime."
    )

    @model_validator(mode="after")
    def _dims(self) -> TensorSpec:
        if self.shape is not None and any(d < -1 or d == 0 for d in self.shape):
            raise ValueError(f"shape: {self.shape}: each dimension is a positive size or -1 (dynamic)")
        return self

    @property
    def batch_dynamic(self) -> bool:
        """The first dimension is dynamic: rows of several requests can be stacked along it."""
        return bool(self.shape) and self.shape[0] == -1


class ProviderSpec(_Contract):
    """An onnxruntime execution provider and its options."""

    name: ProviderName = Field(description="onnxruntime execution provider.")
    # onnxruntime takes provider options as flat string-convertible values (the runtime passes them as strings).
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Provider options passed to onnxruntime."
    )


class BatchingSettings(_Contract):
    """Adaptive batching: concurrent requests stacked along the first dimension into one model run."""

    # Off unless the file says so: a dynamic first dimension need not be a batch of independent rows, and
    # only whoever wrote the file can say it is. mlgit.yaml turns it on by default (docs/contracts.md).
    enabled: bool = Field(False, description="Adaptive batching: concatenate concurrent requests.")
    max_batch_size: int = Field(32, ge=1, description="Most rows in one onnxruntime call.")
    max_delay_ms: float = Field(2.0, ge=0, description="Longest a request waits for batch-mates (ms).")
    max_queue_size: int = Field(1024, ge=1, description="Queued requests beyond this get 503.")


class ThreadSettings(_Contract):
    """onnxruntime's thread pools."""

    intra_op: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: its default).")
    inter_op: int = Field(0, ge=0, description="onnxruntime inter-op threads (0: its default).")


def resolve_providers(device: Device, providers: list[ProviderSpec] | None) -> list[ProviderSpec]:
    """The providers onnxruntime is asked for: none named means the device's default (CUDA on device 0,
    then the CPU, for gpu; the CPU alone for cpu); a gpu model must name a GPU provider."""
    if not providers:
        cuda = [ProviderSpec(name="CUDAExecutionProvider", options={"device_id": 0})]
        return [*(cuda if device == "gpu" else []), ProviderSpec(name="CPUExecutionProvider")]
    if device == "gpu" and not any(p.name in GPU_PROVIDERS for p in providers):
        raise ValueError("providers: a GPU model needs CUDAExecutionProvider or TensorrtExecutionProvider")
    return providers


class ModelSettings(_Contract):
    """The contents of `<repository>/<model>/model-settings.json`. Every field may be left out (the runtime
    then uses the default written here); `mlgit render` writes them all."""

    name: str | None = Field(None, description="Model name, for the reader: the runtime serves the folder's name.")
    version: str | None = Field(
        None, description="Model version, for the reader: the runtime serves each <version>/ folder."
    )
    platform: Literal["onnxruntime"] = Field("onnxruntime", description="The inference engine.")
    inputs: list[TensorSpec] | None = Field(
        None, description="Declared inputs, checked against the model's own; null: what onnxruntime reports."
    )
    outputs: list[TensorSpec] | None = Field(
        None, description="Declared outputs, checked against the model's own; null: what onnxruntime reports."
    )
    device: Device = Field("cpu", description="cpu: onnxruntime; gpu: onnxruntime-gpu on CUDA.")
    providers: list[ProviderSpec] = Field(
        default_factory=list, description="Ordered execution providers; none: the default for `device`."
    )
    allow_cpu_fallback: bool = Field(
        False, description="Let a GPU model become ready on CPU when CUDA is unavailable (default: refuse)."
    )
    batching: BatchingSettings = Field(
        default_factory=BatchingSettings, description="Adaptive batching of concurrent requests into one model run."
    )
    threads: ThreadSettings = Field(default_factory=ThreadSettings, description="onnxruntime thread pools.")
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1, description="Largest accepted request body.")
    warmup: bool = Field(
        True,
        description="Run one request (sample.json, else a made-up one) before becoming ready; a failure fails "
        "the load.",
    )

    @model_validator(mode="after")
    def _default_providers(self) -> ModelSettings:
        self.providers = resolve_providers(self.device, self.providers)
        return self
