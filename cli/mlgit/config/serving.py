"""The mlgit.yaml sections of what runs: the model, how it is served, and the image it is baked into.

What mlgit.yaml shares with model-settings.json (tensor specs, providers, threads, batching, their defaults) is
the contract's, mlgit.model_settings: the serving runtime's own definition (docs/contracts.md).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from mlgit import __version__
from mlgit.config.auth import AuthConfig
from mlgit.config.types import (
    VERSION_PATTERN,
    DnsLabel,
    DnsName,
    LabelKey,
    LabelValue,
    PositiveInt,
    Quantity,
    Reference,
    RepoPath,
    Strict,
    quantity_value,
)
from mlgit.model_settings import (
    BatchingSettings,
    Device,
    ImageAdapter,
    ModelSettings,
    ProviderSpec,
    TensorSpec,
    ThreadSettings,
    resolve_providers,
)

DEFAULT_RUNTIME_IMAGE = "registry.gitlab.com/mlgit/mlgit/serving-runtime"
# /metrics is served on this port only (MLGIT_SERVING_METRICS_PORT), never on the public API's port.
METRICS_PORT = 9090
# The fields that go into model-settings.json as they are take the contract's defaults (docs/contracts.md).
_SETTINGS = ModelSettings.model_fields
# A JSON request body takes this many times its size in memory at its peak in the serving runtime (the
# parser's own tree and the Python objects it builds): measured 17x for a 64 MiB flat list of floats; lists
# of integers or strings expand less, contrived nesting (one-element lists) up to 30x. The runtime itself
# takes about 100 MiB besides.
JSON_EXPANSION = 17
RUNTIME_BASE_BYTES = 128 * 2**20
# The runtime's cap on server processes (MAX_WORKERS of serving_runtime/mlgit_serving/cpus.py; a test keeps
# the two equal): each holds a socket, a pipe and a model copy.
MAX_WORKERS = 256


def _mebibytes(size: float) -> str:
    return f"{math.ceil(size / 2**20)}Mi"


# --- model -------------------------------------------------------------------------------------


class Signature(Strict):
    inputs: list[TensorSpec] = Field(min_length=1, description="Model inputs, in graph order.")
    outputs: list[TensorSpec] = Field(min_length=1, description="Model outputs, in graph order.")

    @property
    def batchable(self) -> bool:
        """Every input has a dynamic batch dimension (what adaptive batching needs)."""
        return all(t.batch_dynamic for t in self.inputs)


class SampleConfig(Strict):
    path: RepoPath = Field(
        "model/sample.json",
        description="OIP v2 request plus `expected_outputs` (docs/contracts.md); used by tests, warm-up "
        "and smoke checks.",
    )
    rtol: float = Field(1e-4, ge=0, description="Relative tolerance for floating-point expected outputs.")
    atol: float = Field(1e-5, ge=0, description="Absolute tolerance for floating-point expected outputs.")


class ExtraVersion(Strict):
    version: str = Field(
        pattern=r"^[0-9]+$", description="Version number: its directory in the image's model repository."
    )
    path: RepoPath = Field(description="Its .onnx file, relative to mlgit.yaml; same signature as model.path.")
    sample: SampleConfig | None = Field(
        None,
        description="Its own sample request with expected outputs, which the deploy's smoke check sends to "
        "/v2/models/<name>/versions/<version>/infer; none: only model.version's sample is checked.",
    )


class ModelConfig(Strict):
    path: RepoPath = Field("model/model.onnx", description="Path of the .onnx file, relative to mlgit.yaml.")
    version: str = Field(
        "1", pattern=r"^[0-9]+$", description="Model version served (a directory name in the runtime)."
    )
    signature: Signature | None = Field(
        None,
        description="Declared inputs/outputs. Checked against the ONNX file; read from it when omitted.",
    )
    sample: SampleConfig = Field(
        default_factory=SampleConfig,
        description="The sample request with its expected outputs: validate, the image smoke run and warm-up use it.",
    )
    adapter: ImageAdapter | None = Field(
        None,
        description="How image files feed the model: `mlgit batch` reads PNG, JPEG or FITS files through it and "
        "the /ui/ page uploads images; none: tensors only (.npz, .json).",
    )

    versions: list[ExtraVersion] = Field(
        default_factory=list,
        description="More versions baked into the same image besides model.version, e.g. [{version: '2', path: "
        "model/v2/model.onnx}], each served at /v2/models/<name>/versions/<version>; the unversioned URLs stay "
        "model.version. They share model.version's signature and model-settings.json.",
    )

    @property
    def all_versions(self) -> list[str]:
        """model.version, then each of model.versions: every version the image holds."""
        return [self.version, *(v.version for v in self.versions)]

    def check_versions(self, selected: list[str] | None, field: str) -> None:
        """ValueError (with `field` first) unless `selected` names only shipped versions, each once, and
        model.version."""
        if selected is None:
            return
        twice = sorted({v for v in selected if selected.count(v) > 1})
        if twice:
            raise ValueError(f"{field}: version {', '.join(twice)} is listed twice")
        unknown = [v for v in selected if v not in self.all_versions]
        if unknown:
            raise ValueError(
                f"{field}: {', '.join(unknown)} not shipped; the image holds versions {', '.join(self.all_versions)} "
                "(model.version and model.versions)"
            )
        if self.version not in selected:
            raise ValueError(f"{field}: must include model.version {self.version}, which the unversioned URLs serve")

    @model_validator(mode="after")
    def _versions_distinct(self) -> ModelConfig:
        versions = self.all_versions
        twice = sorted({v for v in versions if versions.count(v) > 1})
        if twice:
            raise ValueError(f"versions: version {', '.join(twice)} is shipped twice (model.version counts too)")
        return self

    @model_validator(mode="after")
    def _adapter_fits_signature(self) -> ModelConfig:
        # Without a declared signature the check waits for the ONNX file's (config/load.py).
        if self.adapter is not None and self.signature is not None:
            self.adapter.geometry(self.signature.inputs, self.signature.outputs)
        return self


# --- serving -----------------------------------------------------------------------------------


class BatchingConfig(BatchingSettings):
    # On by default here, unlike in a bare model-settings.json: `mlgit init` writes the choice from the
    # model's signature, loading refuses it without a dynamic batch dimension, and render always writes it.
    enabled: bool = Field(True, description="Adaptive batching: concatenate concurrent requests.")


class ResourceAmounts(Strict):
    cpu: Quantity | None = Field(None, description="CPU quantity, e.g. 500m or 2.")
    memory: Quantity | None = Field(None, description="Memory quantity, e.g. 512Mi or 4Gi.")


class ResourcesConfig(Strict):
    requests: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(cpu="500m", memory="512Mi"),
        description="What the scheduler reserves for each pod (the HPA's CPU target is a share of requests.cpu).",
    )
    limits: ResourceAmounts = Field(
        default_factory=lambda: ResourceAmounts(cpu="2", memory="2Gi"),
        description="The most each pod may use: CPU above it is throttled, memory above it kills the pod.",
    )

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourcesConfig:
        for kind in ("cpu", "memory"):
            want, cap = getattr(self.requests, kind), getattr(self.limits, kind)
            if want and cap and quantity_value(want) > quantity_value(cap):
                # the API server rejects such a pod; say so now rather than at deploy time
                raise ValueError(f"requests.{kind}: {want} is more than limits.{kind} ({cap})")
        return self


class AutoscalingConfig(Strict):
    enabled: bool = Field(False, description="Scale with a HorizontalPodAutoscaler instead of fixed replicas.")
    min_replicas: PositiveInt = Field(1, description="Fewest pods the autoscaler keeps.")
    max_replicas: PositiveInt = Field(3, description="Most pods the autoscaler starts.")
    target_cpu_utilization: int = Field(70, ge=1, le=100, description="Average CPU utilisation target (%).")
    target_in_flight: PositiveInt | None = Field(
        None, description="Per-pod in-flight requests target (needs a custom-metrics adapter)."
    )

    @model_validator(mode="after")
    def _order(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas: {self.min_replicas} is greater than max_replicas ({self.max_replicas})")
        return self


class Toleration(Strict):
    key: LabelKey = Field(description="Taint key to tolerate, e.g. nvidia.com/gpu.")
    operator: Literal["Exists", "Equal"] = Field(
        "Exists", description="Exists: any value of the key; Equal: only `value`."
    )
    value: str | None = Field(None, description="Taint value to match (with operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate; none: every effect."
    )


class ServingConfig(Strict):
    device: Device = Field(_SETTINGS["device"].default, description="cpu: onnxruntime; gpu: onnxruntime-gpu on CUDA.")
    gpus: int | None = Field(None, ge=0, description="nvidia.com/gpu per replica (gpu models; default 1).")
    providers: list[ProviderSpec] | None = Field(
        None, description="Ordered execution providers; none or empty: the default for `device`."
    )
    allow_cpu_fallback: bool = Field(
        _SETTINGS["allow_cpu_fallback"].default,
        description="Let a GPU model become ready on CPU when CUDA is unavailable (default: refuse).",
    )
    batching: BatchingConfig = Field(
        default_factory=BatchingConfig, description="Adaptive batching of concurrent requests into one model run."
    )
    threads: ThreadSettings = Field(default_factory=ThreadSettings, description="onnxruntime thread pools.")
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig, description="CPU and memory requests and limits of each serving pod."
    )
    port: int = Field(8080, ge=1024, le=65535, description="Container port (non-root: >= 1024).")
    grpc_port: StrictInt | None = Field(  # strict: YAML's `true` is not port 1
        None,
        ge=1024,
        le=65535,
        description="Serve the Open Inference Protocol v2 over gRPC (GRPCInferenceService) too, on this container "
        "port (the manifests name it `grpc`; 9000 is usual), exposed beside HTTP: an Ingress <name>-grpc or a "
        "GRPCRoute (docs/grpc.md). Probes stay HTTP. None: no gRPC.",
    )
    workers: PositiveInt | Literal["auto"] | None = Field(
        None,
        description="Server processes per pod, each with its own copy of the model (memory grows with them: "
        "resources.limits.memory must hold max_request_bytes' need once per worker); auto: one per CPU the "
        f"container may use (resources.limits.cpu rounded up). At most {MAX_WORKERS}. None: the runtime's default "
        "(MLGIT_SERVING_WORKERS).",
    )
    max_request_bytes: PositiveInt = Field(
        _SETTINGS["max_request_bytes"].default, description="Largest accepted request body."
    )
    drain_seconds: PositiveInt = Field(
        20, description="On SIGTERM, how long in-flight and queued requests may take to finish."
    )
    progress_deadline_seconds: PositiveInt = Field(
        600,
        description="How long a rollout may go without progress (a new pod becoming ready) before Kubernetes "
        "marks it failed and `mlgit deploy` rolls back: the Deployment's progressDeadlineSeconds.",
    )
    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[Toleration] | None = Field(
        None, description="Pod tolerations; gpu models default to tolerating nvidia.com/gpu taints."
    )
    metrics_namespaces: list[DnsLabel] = Field(
        default_factory=lambda: ["monitoring"],
        description="Namespaces whose Prometheus may scrape /metrics (NetworkPolicy).",
    )
    auth: AuthConfig | None = Field(
        None,
        description="Who may call the endpoint, in every environment that sets no `auth` of its own. Not written: "
        "api-key in the production tier, none elsewhere.",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        # An older mlgit.yaml's key: say where it went rather than only that it is unknown.
        if isinstance(data, dict) and "service_monitor" in data:
            raise ValueError(
                "service_monitor: moved to `monitoring: {enabled: true}` (top level of mlgit.yaml, or per "
                "environment), which emits the ServiceMonitor with alert rules and a dashboard"
            )
        return data

    @property
    def cpu_limit_workers(self) -> int | None:
        """The CPUs resources.limits.cpu allows, rounded up as the runtime's `auto` does; None: no limit."""
        cpu = self.resources.limits.cpu
        return None if cpu is None else max(1, math.ceil(quantity_value(cpu)))

    @property
    def worker_copies(self) -> int:
        """Server processes each pod runs, as far as mlgit.yaml tells (auto without a CPU limit: 1, unknown)."""
        if self.workers == "auto":
            return min(self.cpu_limit_workers or 1, MAX_WORKERS)
        return self.workers or 1

    def worker_warnings(self) -> list[str]:
        """Worker counts that work but waste the pod: `serving.workers: why` for each."""
        cpus = self.cpu_limit_workers
        if self.workers == "auto" and cpus is None:
            return [
                "auto without serving.resources.limits.cpu starts one server process (and model copy) per CPU of "
                "the node the pod lands on; set a CPU limit, or a number of workers"
            ]
        if isinstance(self.workers, int) and cpus is not None and self.workers > cpus:
            return [
                f"{self.workers} server processes share resources.limits.cpu ({self.resources.limits.cpu}): beyond "
                f"{cpus} they add memory, not throughput; set workers: {cpus} (or auto), or raise the CPU limit"
            ]
        return []

    @model_validator(mode="after")
    def _request_fits_memory(self) -> ServingConfig:
        limit = self.resources.limits.memory
        copies = self.worker_copies  # each worker decodes its own requests, at the same time as the others
        need = (self.max_request_bytes * JSON_EXPANSION + RUNTIME_BASE_BYTES) * copies
        if limit is None or need <= quantity_value(limit):
            return self
        fitting = int((quantity_value(limit) / copies - RUNTIME_BASE_BYTES) // JSON_EXPANSION)
        lower = f"lower serving.max_request_bytes to at most {fitting} or " if fitting > 0 else ""
        fewer = "" if copies == 1 else ", or lower serving.workers"
        per_worker = "" if copies == 1 else f", once per worker ({copies})"
        raise ValueError(
            f"max_request_bytes: {self.max_request_bytes} does not fit resources.limits.memory ({limit}): a JSON "
            f"request body takes about {JSON_EXPANSION} times its size in memory while it is decoded, plus "
            f"{_mebibytes(RUNTIME_BASE_BYTES)} for the server{per_worker}, {_mebibytes(need)} in all; {lower}raise "
            f"serving.resources.limits.memory to at least {_mebibytes(need)}{fewer} (the model's own memory comes "
            "on top)"
        )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_count_or_auto(cls, value: Any) -> Any:
        # One message instead of one per member of the union (an int >= 1, or "auto").
        if value is None or value == "auto":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WORKERS:
            return value
        raise ValueError(
            f"{value!r} is not a number of processes: give a whole number >= 1 (at most {MAX_WORKERS}), or auto"
        )

    @model_validator(mode="after")
    def _grpc_port_apart(self) -> ServingConfig:
        if self.grpc_port in (self.port, METRICS_PORT):
            taken = "serving.port" if self.grpc_port == self.port else f"the metrics port ({METRICS_PORT})"
            raise ValueError(f"grpc_port: {self.grpc_port} is also {taken}; choose another (9000 is usual)")
        return self

    @model_validator(mode="after")
    def _device_defaults(self) -> ServingConfig:
        if self.port == METRICS_PORT:
            raise ValueError(f"port: {METRICS_PORT} is the metrics port (served apart from the API); choose another")
        if self.device == "cpu":
            if self.gpus:
                raise ValueError(f"gpus: {self.gpus} on a CPU model; set serving.device: gpu or remove serving.gpus")
            self.gpus = 0
        elif self.gpus is None:
            self.gpus = 1
        elif self.gpus == 0:
            raise ValueError("gpus: 0 on a GPU model; a GPU model needs at least one GPU")
        self.providers = resolve_providers(self.device, self.providers)
        if self.tolerations is None:
            gpu_taint = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
            self.tolerations = [gpu_taint] if self.device == "gpu" else []
        return self


# --- image -------------------------------------------------------------------------------------


class ImageConfig(Strict):
    repository: str = Field(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._/-][a-z0-9]+)*)*$",
        description="Where the model image is pushed, e.g. registry.gitlab.com/group/project.",
    )
    runtime: Reference = Field(DEFAULT_RUNTIME_IMAGE, description="Serving runtime image the model image builds on.")
    runtime_version: str = Field(
        __version__, pattern=VERSION_PATTERN, description="Runtime version; the tag is <version>-<cpu|gpu>."
    )
    pull_secrets: list[DnsName] = Field(
        default_factory=list,
        description="Secrets of type kubernetes.io/dockerconfigjson the pods pull the image with (a private "
        "registry, e.g. from a GitLab deploy token; the .gitlab-ci.yml header says how to create one). mlgit "
        "never writes them; `mlgit deploy` checks that they exist.",
    )

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]
