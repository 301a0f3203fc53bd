"""model-settings.json: the one contract between `mlgit render` (which writes it) and the serving runtime
(which reads it); docs/contracts.md describes it.

Both distributions ship this very file: it is mlgit_serving's module, and cli/mlgit/model_settings.py is a
symlink to it (a wheel carries a copy). So it imports nothing but pydantic and the standard library, and
neither package by name: the runtime must never import the CLI, and the CLI must not need the web stack.
"""

from __future__ import annotations

from dataclasses import dataclass
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


ImageFormat = Literal["png", "jpeg", "fits"]
FLOAT_DATATYPES = ("FP16", "FP32", "FP64")


class MaskOutput(_Contract):
    """A model output also written as a black-and-white PNG (one per image), besides the .npz of all outputs."""

    name: str = Field(description="The model output holding the mask: [N, 1, H, W], [N, H, W, 1] or [N, H, W].")
    kind: Literal["mask"] = Field("mask", description="mask: values above `threshold` are white (255), others black.")
    threshold: float = Field(0.5, description="Values above it are in the mask.")


@dataclass(frozen=True)
class ImageGeometry:
    """What an image must be to feed the adapter's input: its channels and size (None: any size)."""

    input: str
    channels: int
    height: int | None
    width: int | None


class ImageAdapter(_Contract):
    """How image files become the model's input: `mlgit batch` reads them (and the /ui/ page uploads them).

    Each image is one row: pixel * scale, then (x - mean) / std per channel, laid out as `layout`, converted to
    the input's datatype. FITS data (physical values after BSCALE/BZERO) is used as is: no scale, mean or std.
    Images must already have the input's height and width: nothing is resized.
    """

    kind: Literal["image"] = Field(description="image: PNG, JPEG or FITS files feed one input.")
    input: str | None = Field(None, description="The model input the image feeds; none: the model's only input.")
    formats: list[ImageFormat] = Field(
        default_factory=lambda: ["png", "jpeg"],
        min_length=1,
        description="Accepted file formats: png, jpeg, fits (the primary HDU's 2-D image).",
    )
    layout: Literal["NCHW", "NHWC"] = Field(
        "NCHW", description="Where the channels are in the input's shape; their number (1 grey, 3 RGB) is the shape's."
    )
    scale: float = Field(1 / 255, gt=0, description="Pixel values are multiplied by this first (not FITS data).")
    mean: list[float] = Field(
        default_factory=lambda: [0.0], min_length=1, description="Subtracted per channel after scaling (1 or C values)."
    )
    std: list[float] = Field(
        default_factory=lambda: [1.0], min_length=1, description="Divides per channel after the mean (1 or C values)."
    )
    output: MaskOutput | None = Field(None, description="Also write this output as a PNG mask per image.")

    @model_validator(mode="after")
    def _positive_std(self) -> ImageAdapter:
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std: {self.std}: every value must be above 0")
        return self

    def geometry(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> ImageGeometry:
        """Check the adapter against the model's signature; ValueError `adapter.<field>: why` when it does not fit."""
        names = [t.name for t in inputs]
        if self.input is None and len(inputs) != 1:
            raise ValueError(f"adapter.input: the model has inputs {names}; name the one the image feeds")
        spec = inputs[0] if self.input is None else next((t for t in inputs if t.name == self.input), None)
        if spec is None:
            raise ValueError(f"adapter.input: {self.input!r} is not an input of the model; it has {names}")
        if spec.datatype not in FLOAT_DATATYPES:
            raise ValueError(f"adapter.input: {spec.name!r} is {spec.datatype}; an image input is FP16, FP32 or FP64")
        channel_axis = 1 if self.layout == "NCHW" else 3
        if spec.shape is None or len(spec.shape) != 4:
            raise ValueError(
                f"adapter.input: {spec.name!r} has shape {spec.shape}; an image input has 4 dimensions ({self.layout})"
            )
        if spec.shape[0] not in (-1, 1):
            raise ValueError(f"adapter.input: {spec.name!r} has shape {spec.shape}; its first dimension is -1 or 1")
        channels = spec.shape[channel_axis]
        if channels not in (1, 3):
            raise ValueError(
                f"adapter.layout: {self.layout} puts the channels of {spec.name!r} (shape {spec.shape}) at dimension "
                f"{channel_axis}, which is {channels}; it must be 1 (grey) or 3 (RGB): check the layout"
            )
        for field in ("mean", "std"):
            values = getattr(self, field)
            if len(values) not in (1, channels):
                counts = "1" if channels == 1 else f"1 or {channels}"
                raise ValueError(f"adapter.{field}: {len(values)} values for {channels} channel(s); give {counts}")
        if "fits" in self.formats and channels != 1:
            raise ValueError(f"adapter.formats: fits gives one channel, but {spec.name!r} takes {channels}")
        if self.output is not None:
            self._check_mask(outputs)
        height, width = (spec.shape[2], spec.shape[3]) if self.layout == "NCHW" else (spec.shape[1], spec.shape[2])
        return ImageGeometry(spec.name, channels, None if height == -1 else height, None if width == -1 else width)

    def _check_mask(self, outputs: list[TensorSpec]) -> None:
        assert self.output is not None
        spec = next((t for t in outputs if t.name == self.output.name), None)
        if spec is None:
            raise ValueError(
                f"adapter.output.name: {self.output.name!r} is not an output of the model; it has "
                f"{[t.name for t in outputs]}"
            )
        one_channel = spec.shape is not None and (
            len(spec.shape) == 3 or (len(spec.shape) == 4 and spec.shape[1 if self.layout == "NCHW" else 3] == 1)
        )
        if spec.datatype == "BYTES" or not one_channel:
            raise ValueError(
                f"adapter.output.name: {spec.name!r} ({spec.datatype} {spec.shape}) is not a one-channel image: a mask "
                f"output is numeric, [N, H, W] or one channel in {self.layout}"
            )


class FeatureProfile(_Contract):
    """The reference distribution of one feature of an input: its bins and the reference's share in each."""

    feature: str = Field(
        description="The element's flat index within a row (C order), or `mean` / `std` of the row for inputs "
        "profiled by summary."
    )
    edges: list[float] = Field(
        description="Inner bin edges, ascending (bins - 1 of them): a value falls in bin i where i is the number "
        "of edges <= the value (numpy.searchsorted side='right')."
    )
    proportions: list[float] = Field(description="The reference's share of rows in each bin (len(edges) + 1).")

    @model_validator(mode="after")
    def _bins(self) -> FeatureProfile:
        if len(self.proportions) != len(self.edges) + 1:
            raise ValueError(f"proportions: {len(self.proportions)} values for {len(self.edges) + 1} bins")
        return self


class InputProfile(_Contract):
    """The reference profile of one model input."""

    name: str = Field(description="The input, as in the signature.")
    summary: bool = Field(
        description="The features are the row's mean and std (rows of more than 64 elements, or of no fixed size) "
        "instead of each element."
    )
    features: list[FeatureProfile] = Field(min_length=1, description="One profile per feature.")


class DriftSettings(_Contract):
    """Input drift: each input's recent rows against a reference profile, as a PSI score per feature."""

    window: int = Field(1000, ge=1, description="The score covers this many most recent rows per input.")
    threshold: float = Field(0.2, gt=0, description="A score above it is drift (the alert's threshold).")
    inputs: list[InputProfile] = Field(min_length=1, description="The profiled inputs (numeric ones).")


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
    adapter: ImageAdapter | None = Field(
        None, description="How image files feed the model (`mlgit batch`, the /ui/ page); none: tensors only."
    )
    drift: DriftSettings | None = Field(
        None, description="Input drift scores against a reference profile (mlgit_input_drift_score); none: off."
    )

    @model_validator(mode="after")
    def _default_providers(self) -> ModelSettings:
        self.providers = resolve_providers(self.device, self.providers)
        return self

    @model_validator(mode="after")
    def _adapter_fits(self) -> ModelSettings:
        # A bare file may leave the signature out; the batch runner then checks against the model itself.
        if self.adapter is not None and self.inputs is not None and self.outputs is not None:
            self.adapter.geometry(self.inputs, self.outputs)
        return self
