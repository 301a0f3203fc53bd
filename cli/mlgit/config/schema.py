"""The mlgit.yaml models: the single source of truth of a model repository.

Every field is documented here; `mlgit schema` exports these docs as JSON Schema for editors.
Precedence, where a value can come from several places: command-line flag > mlgit.yaml >
environment variable > the default written here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgit import __version__
from mlgit.config.types import (
    DNS_NAME_RE,
    AnnotationMap,
    Datatype,
    DnsLabel,
    DnsName,
    Duration,
    PositiveInt,
    Quantity,
    quantity_value,
)

DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod")
DEFAULT_RUNTIME_IMAGE = "registry.gitlab.com/mlgit/mlgit/serving-runtime"
DEFAULT_CLI_IMAGE = "registry.gitlab.com/mlgit/mlgit/cli"
DEFAULT_COMPONENT = "gitlab.com/mlgit/ci/model-pipeline"


class Strict(BaseModel):
    """Base of every section: unknown keys are errors, so a misspelt key never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


# --- model -------------------------------------------------------------------------------------


class TensorSpec(Strict):
    name: str = Field(description="Tensor name, exactly as in the ONNX graph.")
    datatype: Datatype = Field(description="Open Inference Protocol v2 datatype, e.g. FP32, INT64, BYTES.")
    shape: list[int] = Field(description="Dimensions; -1 marks a dynamic dimension (e.g. the batch).")

    @model_validator(mode="after")
    def _dims(self) -> TensorSpec:
        if any(d < -1 or d == 0 for d in self.shape):
            raise ValueError(f"shape: {self.shape}: each dimension is a positive size or -1 (dynamic)")
        return self


class Signature(Strict):
    inputs: list[TensorSpec] = Field(min_length=1, description="Model inputs, in graph order.")
    outputs: list[TensorSpec] = Field(min_length=1, description="Model outputs, in graph order.")


class SampleConfig(Strict):
    path: str = Field(
        "model/sample.json",
        description="OIP v2 request plus `expected_outputs` (docs/contracts.md); used by tests, warm-up "
        "and smoke checks.",
    )
    rtol: float = Field(1e-4, ge=0, description="Relative tolerance for floating-point expected outputs.")
    atol: float = Field(1e-5, ge=0, description="Absolute tolerance for floating-point expected outputs.")


class ModelConfig(Strict):
    path: str = Field("model/model.onnx", description="Path of the .onnx file, relative to mlgit.yaml.")
    version: str = Field(
        "1", pattern=r"^[0-9]+$", description="Model version served (a directory name in the runtime)."
    )
    signature: Signature | None = Field(
        None,
        description="Declared inputs/outputs. Checked against the ONNX file; read from it when omitted.",
    )
    sample: SampleConfig = Field(default_factory=SampleConfig)


# --- serving -----------------------------------------------------------------------------------


class ProviderConfig(Strict):
    name: Literal["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"] = Field(
        description="onnxruntime execution provider."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Provider options passed to onnxruntime.")


class BatchingConfig(Strict):
    enabled: bool = Field(True, description="Adaptive batching: concatenate concurrent requests.")
    max_batch_size: PositiveInt = Field(32, description="Most rows in one onnxruntime call.")
    max_delay_ms: float = Field(2.0, ge=0, description="Longest a request waits for batch-mates (ms).")
    max_queue_size: PositiveInt = Field(1024, description="Queued requests beyond this get 503.")


class ThreadsConfig(Strict):
    intra_op: int = Field(0, ge=0, description="onnxruntime intra-op threads (0: its default).")
    inter_op: int = Field(0, ge=0, description="onnxruntime inter-op threads (0: its default).")


class ResourceAmounts(Strict):
    cpu: Quantity | None = Field(None, description="CPU quantity, e.g. 500m or 2.")
    memory: Quantity | None = Field(None, description="Memory quantity, e.g. 512Mi or 4Gi.")


class ResourcesConfig(Strict):
    requests: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(cpu="500m", memory="512Mi"))
    limits: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(cpu="2", memory="2Gi"))

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourcesConfig:
        for kind in ("cpu", "memory"):
            want, cap = getattr(self.requests, kind), getattr(self.limits, kind)
            if want and cap and quantity_value(want) > quantity_value(cap):
                # the API server rejects such a pod; say so now rather than at deploy time
                raise ValueError(f"requests.{kind}: {want} is more than limits.{kind} ({cap})")
        return self


class Toleration(Strict):
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class ServingConfig(Strict):
    device: Literal["cpu", "gpu"] = Field("cpu", description="cpu: onnxruntime; gpu: onnxruntime-gpu on CUDA.")
    gpus: int | None = Field(None, ge=0, description="nvidia.com/gpu per replica (gpu models; default 1).")
    providers: list[ProviderConfig] | None = Field(
        None, description="Ordered execution providers; default from `device`."
    )
    allow_cpu_fallback: bool = Field(
        False, description="Let a GPU model become ready on CPU when CUDA is unavailable (default: refuse)."
    )
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    threads: ThreadsConfig = Field(default_factory=ThreadsConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    port: int = Field(8080, ge=1024, le=65535, description="Container port (non-root: >= 1024).")
    max_request_bytes: PositiveInt = Field(64 * 1024 * 1024, description="Largest accepted request body.")
    drain_seconds: PositiveInt = Field(
        20, description="On SIGTERM, how long in-flight and queued requests may take to finish."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[Toleration] | None = Field(
        None, description="Pod tolerations; gpu models default to tolerating nvidia.com/gpu taints."
    )
    metrics_namespaces: list[DnsLabel] = Field(
        default_factory=lambda: ["monitoring"],
        description="Namespaces whose Prometheus may scrape /metrics (NetworkPolicy).",
    )
    service_monitor: bool = Field(False, description="Also emit a prometheus-operator ServiceMonitor (needs its CRDs).")

    @model_validator(mode="after")
    def _device_defaults(self) -> ServingConfig:
        if self.device == "cpu":
            if self.gpus:
                raise ValueError(f"gpus: {self.gpus} on a CPU model; set serving.device: gpu or remove serving.gpus")
            self.gpus = 0
        elif self.gpus is None:
            self.gpus = 1
        elif self.gpus == 0:
            raise ValueError("gpus: 0 on a GPU model; a GPU model needs at least one GPU")
        if self.providers is None:
            cuda = [ProviderConfig(name="CUDAExecutionProvider", options={"device_id": 0})]
            self.providers = [
                *(cuda if self.device == "gpu" else []),
                ProviderConfig(name="CPUExecutionProvider"),
            ]
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
    runtime: str = Field(DEFAULT_RUNTIME_IMAGE, description="Serving runtime image the model image builds on.")
    runtime_version: str = Field(__version__, description="Runtime version; the tag is <version>-<cpu|gpu>.")

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]


# --- environments ------------------------------------------------------------------------------


class GatewayRef(Strict):
    name: DnsLabel = Field(description="Gateway API Gateway to attach the HTTPRoute to.")
    namespace: DnsLabel = Field(description="Namespace of that Gateway.")
    section_name: str | None = Field("https", description="Listener of the Gateway (its sectionName).")


class ExposureConfig(Strict):
    kind: Literal["ingress", "gateway", "none"] = Field(
        "ingress", description="ingress: networking.k8s.io Ingress; gateway: Gateway API HTTPRoute; none."
    )
    ingress_class: str = Field("nginx", description="ingressClassName of the Ingress.")
    annotations: AnnotationMap = Field(
        default_factory=dict, description="Extra controller-specific Ingress/HTTPRoute annotations."
    )
    timeout_seconds: PositiveInt = Field(60, description="Route read/send timeout (slow models need more).")
    gateway: GatewayRef | None = Field(None, description="Required when kind is gateway.")
    allowed_namespaces: list[DnsLabel] = Field(
        default_factory=lambda: ["ingress-nginx"],
        description="Namespaces the NetworkPolicy admits traffic from (ingress controller / gateway).",
    )

    @model_validator(mode="after")
    def _gateway_needed(self) -> ExposureConfig:
        if self.kind == "gateway" and self.gateway is None:
            raise ValueError("gateway: kind gateway needs `gateway: {name, namespace}` naming the Gateway to attach to")
        return self


class TlsConfig(Strict):
    enabled: bool = Field(True, description="Terminate TLS with a cert-manager certificate.")
    issuer: DnsName = Field("letsencrypt-prod", description="cert-manager issuer name.")
    issuer_kind: Literal["ClusterIssuer", "Issuer"] = "ClusterIssuer"


class AutoscalingConfig(Strict):
    enabled: bool = False
    min_replicas: PositiveInt = 1
    max_replicas: PositiveInt = 3
    target_cpu_utilization: int = Field(70, ge=1, le=100, description="Average CPU utilisation target (%).")
    target_in_flight: PositiveInt | None = Field(
        None, description="Per-pod in-flight requests target (needs a custom-metrics adapter)."
    )

    @model_validator(mode="after")
    def _order(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas: {self.min_replicas} is greater than max_replicas ({self.max_replicas})")
        return self


Tier = Literal["production", "staging", "testing", "development", "other"]


class EnvironmentConfig(Strict):
    namespace: DnsLabel | None = Field(None, description="Kubernetes namespace (default <name>-<env>).")
    create_namespace: bool = Field(False, description="Let `mlgit deploy` create the namespace.")
    host: DnsName | None = Field(None, description="Public host (default <name>.<env>.<domain>; prod <name>.<domain>).")
    replicas: int = Field(1, ge=0, description="Replicas when autoscaling is off.")
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    kube_context: str | None = Field(
        None, description="Kubernetes context, e.g. the GitLab agent context group/project:agent."
    )
    exposure: ExposureConfig | None = Field(None, description="Overrides the top-level exposure.")
    tls: TlsConfig | None = Field(None, description="Overrides the top-level tls.")
    tier: Tier | None = Field(None, description="GitLab deployment_tier (default from the name).")
    deploy: Literal["manual", "auto"] = Field("manual", description="Deploy job: a button, or automatic.")


class ReviewConfig(Strict):
    enabled: bool = Field(True, description="Review app per merge request.")
    namespace: DnsLabel | None = Field(None, description="Namespace of review apps (default <name>-review).")
    host: str | None = Field(
        None,
        description="Host template with {slug} for the branch slug (default {slug}.<name>.review.<domain>).",
    )
    auto_stop_in: Duration = Field("3 days", description="GitLab stops an idle review app after this.")
    deploy: Literal["manual", "auto"] = "auto"
    kube_context: str | None = None
    exposure: ExposureConfig | None = None
    tls: TlsConfig | None = None


class PromotionConfig(Strict):
    order: list[DnsLabel] | None = Field(None, description="Environments in promotion order (default: all, in order).")
    reviewers: list[str] = Field(default_factory=list, description="GitLab usernames asked to review promotions.")
    labels: list[str] = Field(default_factory=lambda: ["promotion"], description="Labels on promotion MRs.")
    auto_deploy: bool = Field(False, description="Deploy automatically when a promotion MR merges.")


class Waiver(Strict):
    policy: str = Field(min_length=1, description="Policy id, e.g. MLGIT-SEC-001.")
    resource: str = Field("*", description="Kind/name (or Kind/namespace/name); * for all.")
    environment: DnsLabel | Literal["*"] = "*"
    reason: str = Field(min_length=10, description="Why this is acceptable (reviewed with the waiver).")
    expires: dt.date = Field(description="After this date the waiver no longer applies.")


class PolicyConfig(Strict):
    mode: Literal["enforce", "warn"] = Field("enforce", description="enforce: a deny fails the pipeline.")
    waivers: list[Waiver] = Field(default_factory=list)
    extra_dirs: list[str] = Field(default_factory=list, description="Team policy folders (Rego v1), repo-relative.")
    allowed_registries: list[str] = Field(default_factory=list, description="Default: the image registry.")
    allowed_issuers: list[str] = Field(default_factory=list, description="Default: the configured issuers.")


class PipelineConfig(Strict):
    mode: Literal["inline", "component"] = Field(
        "inline",
        description="inline: self-contained .gitlab-ci.yml; component: include mlgit's CI/CD component.",
    )
    component: str = Field(DEFAULT_COMPONENT, description="CI/CD component path (component mode).")
    version: str = Field(__version__, description="Pinned mlgit version: component and CLI image.")
    cli_image: str = Field(
        DEFAULT_CLI_IMAGE,
        description="Image of the test, deploy and promote jobs: mlgit, kubectl, onnxruntime, pytest.",
    )


# --- root --------------------------------------------------------------------------------------


def _default_tier(env: str) -> Tier:
    return {"prod": "production", "production": "production", "staging": "staging", "dev": "development",
            "development": "development", "test": "testing"}.get(env, "other")  # fmt: skip


class MlgitConfig(Strict):
    """mlgit.yaml."""

    name: DnsLabel = Field(description="Model name: names the image, the Kubernetes objects and the URL.")
    domain: DnsName = Field(description="Base DNS domain; every host must be inside it.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    image: ImageConfig
    exposure: ExposureConfig = Field(default_factory=ExposureConfig, description="Default for all environments.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="Default for all environments.")
    environments: dict[DnsLabel, EnvironmentConfig] = Field(
        default_factory=lambda: {e: EnvironmentConfig() for e in DEFAULT_ENVIRONMENTS},
        description="Ordered environments (default dev, staging, prod).",
    )
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)

    @model_validator(mode="after")
    def _resolve(self) -> MlgitConfig:
        if not self.name[0].isalpha():
            raise ValueError(f"name: {self.name!r} must start with a letter (it names a Kubernetes Service)")
        if self.review.enabled and len(self.name) > 31:
            raise ValueError(
                f"name: {self.name!r} is {len(self.name)} characters; with review apps on, at most 31 fit "
                "<name>-review-<branch slug> in a 63-character label (or set review.enabled: false)"
            )
        if not self.environments:
            raise ValueError("environments: declare at least one environment")
        if "review" in self.environments:
            raise ValueError("environments: 'review' is reserved for merge-request review apps (see `review:`)")
        for env, cfg in self.environments.items():
            if len(f"{self.name}-{env}") > 63:
                raise ValueError(f"environments.{env}: '{self.name}-{env}' must fit a 63-character label")
            cfg.namespace = cfg.namespace or f"{self.name}-{env}"[:63].rstrip("-")
            cfg.host = cfg.host or (
                f"{self.name}.{self.domain}" if env == "prod" else f"{self.name}.{env}.{self.domain}"
            )
            cfg.exposure = cfg.exposure or self.exposure
            cfg.tls = cfg.tls or self.tls
            cfg.tier = cfg.tier or _default_tier(env)
            if cfg.tier == "production":
                # Production defaults meet the prod policies: two replicas, a PDB and an HPA.
                if "replicas" not in cfg.model_fields_set:
                    cfg.replicas = 2
                if "autoscaling" not in cfg.model_fields_set:
                    cfg.autoscaling = AutoscalingConfig(enabled=True, min_replicas=2, max_replicas=4)
            if cfg.autoscaling.enabled and not self.serving.resources.requests.cpu:
                raise ValueError(
                    f"environments.{env}.autoscaling: a CPU-utilisation HPA needs serving.resources.requests.cpu"
                )
            _check_in_domain(cfg.host, self.domain, f"environments.{env}.host")
        self.review.namespace = self.review.namespace or f"{self.name}-review"
        self.review.host = self.review.host or f"{{slug}}.{self.name}.review.{self.domain}"
        self.review.exposure = self.review.exposure or self.exposure
        self.review.tls = self.review.tls or self.tls
        sample_host = self.review.host.replace("{slug}", "branch")
        if "{slug}" not in self.review.host or not DNS_NAME_RE.match(sample_host):
            raise ValueError(
                f"review.host: {self.review.host!r} must be a DNS name containing {{slug}} (the branch slug)"
            )
        _check_in_domain(sample_host, self.domain, "review.host")
        order = self.promotion.order if self.promotion.order is not None else list(self.environments)
        unknown = [e for e in order if e not in self.environments]
        if unknown:
            raise ValueError(
                f"promotion.order: names unknown environment(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.environments)}"
            )
        if len(set(order)) != len(order):
            raise ValueError(f"promotion.order: lists an environment twice: {order}")
        self.promotion.order = order
        return self

    def environment(self, env: str) -> EnvironmentConfig:
        """The environment named `env` (raises KeyError with the known names)."""
        try:
            return self.environments[env]
        except KeyError:
            raise KeyError(f"unknown environment {env!r}; known: {', '.join(self.environments)}") from None

    @property
    def runtime_image(self) -> str:
        return f"{self.image.runtime}:{self.image.runtime_version}-{self.serving.device}"

    @property
    def allowed_registries(self) -> list[str]:
        return self.policy.allowed_registries or [self.image.registry]


def _check_in_domain(host: str, domain: str, field: str) -> None:
    if host != domain and not host.endswith("." + domain):
        raise ValueError(f"{field}: host {host!r} is outside the domain {domain!r}; use a name ending in .{domain}")
