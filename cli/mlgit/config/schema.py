"""The mlgit.yaml model: the single source of truth of a model repository.

Every field is documented here, in config/serving.py and in model_settings.py (what model-settings.json shares);
`mlgit schema` exports these docs as JSON Schema for editors.
Precedence, where a value can come from several places: command-line flag > mlgit.yaml >
environment variable > the default written here.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from mlgit import __version__
from mlgit.config.serving import ImageConfig, ModelConfig, ServingConfig
from mlgit.config.types import (
    DNS_NAME_RE,
    AnnotationMap,
    DnsLabel,
    DnsName,
    Duration,
    ModelName,
    OneLine,
    PositiveInt,
    Reference,
    RepoPath,
    Strict,
)

DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod")
DEFAULT_CLI_IMAGE = "registry.gitlab.com/mlgit/mlgit/cli"
DEFAULT_COMPONENT = "gitlab.com/mlgit/ci/model-pipeline"


# --- environments ------------------------------------------------------------------------------


class GatewayRef(Strict):
    name: DnsLabel = Field(description="Gateway API Gateway to attach the HTTPRoute to.")
    namespace: DnsLabel = Field(description="Namespace of that Gateway.")
    section_name: DnsLabel | None = Field("https", description="Listener of the Gateway (its sectionName).")


class ExposureConfig(Strict):
    kind: Literal["ingress", "gateway", "none"] = Field(
        "ingress", description="ingress: networking.k8s.io Ingress; gateway: Gateway API HTTPRoute; none."
    )
    ingress_class: DnsName = Field("nginx", description="ingressClassName of the Ingress.")
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
    issuer_kind: Literal["ClusterIssuer", "Issuer"] = Field(
        "ClusterIssuer", description="ClusterIssuer (cluster-wide) or Issuer (in the environment's namespace)."
    )


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


Tier = Literal["production", "staging", "testing", "development", "other"]


class EnvironmentConfig(Strict):
    namespace: DnsLabel | None = Field(None, description="Kubernetes namespace (default <name>-<env>).")
    create_namespace: bool = Field(False, description="Let `mlgit deploy` create the namespace.")
    host: DnsName | None = Field(None, description="Public host (default <name>.<env>.<domain>; prod <name>.<domain>).")
    replicas: int = Field(1, ge=0, description="Replicas when autoscaling is off.")
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig,
        description="HorizontalPodAutoscaler (production tiers default to on, 2-4 replicas).",
    )
    kube_context: OneLine | None = Field(
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
    deploy: Literal["manual", "auto"] = Field("auto", description="Deploy job of a review app: a button, or automatic.")
    kube_context: OneLine | None = Field(None, description="Kubernetes context of review apps (like an environment's).")
    exposure: ExposureConfig | None = Field(None, description="Overrides the top-level exposure for review apps.")
    tls: TlsConfig | None = Field(None, description="Overrides the top-level tls for review apps.")

    def host_for(self, slug: str) -> str:
        """The host of the review app of branch `slug`: `host` with {slug} replaced."""
        assert self.host is not None  # resolved by MlgitConfig
        return self.host.replace("{slug}", slug)


class PromotionConfig(Strict):
    order: list[DnsLabel] | None = Field(
        None, min_length=1, description="Environments in promotion order (default: all, in order)."
    )
    reviewers: list[str] = Field(default_factory=list, description="GitLab usernames asked to review promotions.")
    labels: list[str] = Field(default_factory=lambda: ["promotion"], description="Labels on promotion MRs.")
    auto_deploy: bool = Field(False, description="Deploy automatically when a promotion MR merges.")


class Waiver(Strict):
    policy: str = Field(min_length=1, description="Policy id, e.g. MLGIT-SEC-001.")
    resource: str = Field("*", description="Kind/name (or Kind/namespace/name); * for all.")
    environment: DnsLabel | Literal["*"] = Field("*", description="Environment (or review) it applies to; * for all.")
    reason: str = Field(min_length=10, description="Why this is acceptable (reviewed with the waiver).")
    expires: dt.date = Field(
        description="After this date the waiver no longer applies. At most 90 days ahead, unless the platform team "
        "sets MLGIT_WAIVER_MAX_DAYS (a waiver expiring later is refused)."
    )


class PolicyConfig(Strict):
    mode: Literal["enforce", "warn"] = Field(
        "enforce",
        description="enforce: a deny fails the pipeline; warn reports denies as warnings, only where the platform "
        "team allows it (MLGIT_POLICY_ALLOW_WARN=true).",
    )
    waivers: list[Waiver] = Field(
        default_factory=list, description="Reviewed exceptions to a policy, each with a reason and an expiry date."
    )
    extra_dirs: list[RepoPath] = Field(
        default_factory=list,
        description="Team policy folders (Rego v1) inside the repository, repo-relative. A platform team's shared "
        "folder comes in through MLGIT_POLICY_DIRS (or `policy check --policy-dir`), not through mlgit.yaml.",
    )
    allowed_registries: list[str] = Field(
        default_factory=list,
        description="Default: the image registry. Narrowed to MLGIT_ALLOWED_REGISTRIES when the platform sets it.",
    )
    allowed_issuers: list[str] = Field(
        default_factory=list,
        description="Default: the configured issuers. Narrowed to MLGIT_ALLOWED_ISSUERS when the platform sets it.",
    )


class PipelineConfig(Strict):
    mode: Literal["inline", "component"] = Field(
        "inline",
        description="inline: self-contained .gitlab-ci.yml; component: include mlgit's CI/CD component.",
    )
    component: Reference = Field(DEFAULT_COMPONENT, description="CI/CD component path (component mode).")
    version: str = Field(
        __version__,
        pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]*$",
        description="Pinned mlgit version: component and CLI image.",
    )
    cli_image: Reference = Field(
        DEFAULT_CLI_IMAGE,
        description="Image of the test, deploy and promote jobs: mlgit, kubectl, onnxruntime, pytest.",
    )


# --- root --------------------------------------------------------------------------------------


def _default_tier(env: str) -> Tier:
    return {"prod": "production", "production": "production", "staging": "staging", "dev": "development",
            "development": "development", "test": "testing"}.get(env, "other")  # fmt: skip


class MlgitConfig(Strict):
    """mlgit.yaml."""

    name: ModelName = Field(description="Model name: names the image, the Kubernetes objects and the URL.")
    domain: DnsName = Field(description="Base DNS domain; every host must be inside it.")
    model: ModelConfig = Field(
        default_factory=ModelConfig, description="The ONNX file, its version, signature and sample request."
    )
    serving: ServingConfig = Field(
        default_factory=ServingConfig, description="How the serving runtime and its pods run the model."
    )
    image: ImageConfig = Field(description="Where the model image is pushed, and the runtime image it builds on.")
    exposure: ExposureConfig = Field(default_factory=ExposureConfig, description="Default for all environments.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="Default for all environments.")
    environments: dict[DnsLabel, EnvironmentConfig] = Field(
        default_factory=lambda: {e: EnvironmentConfig() for e in DEFAULT_ENVIRONMENTS},
        description="Ordered environments (default dev, staging, prod).",
    )
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="A review app per merge request.")
    promotion: PromotionConfig = Field(
        default_factory=PromotionConfig, description="Promotion of a tested image digest through merge requests."
    )
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Rego policy checks and their waivers.")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig, description="The generated .gitlab-ci.yml.")

    @model_validator(mode="after")
    def _resolve(self) -> MlgitConfig:
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
                # Production defaults meet the prod policies (two replicas, a PDB and an HPA); an explicit
                # replica count is kept and becomes the default HPA's floor.
                if "replicas" not in cfg.model_fields_set:
                    cfg.replicas = 2
                if "autoscaling" not in cfg.model_fields_set:
                    floor = max(cfg.replicas, 2)
                    cfg.autoscaling = AutoscalingConfig(
                        enabled=True, min_replicas=floor, max_replicas=max(4, 2 * floor)
                    )
            if cfg.autoscaling.enabled and not self.serving.resources.requests.cpu:
                raise ValueError(
                    f"environments.{env}.autoscaling: a CPU-utilisation HPA needs serving.resources.requests.cpu"
                )
            _check_in_domain(cfg.host, self.domain, f"environments.{env}.host")
        namespaces: dict[str, str] = {}
        for env, cfg in self.environments.items():
            if cfg.namespace in namespaces:
                raise ValueError(
                    f"environments.{env}.namespace: {cfg.namespace} is also {namespaces[cfg.namespace]}'s namespace; "
                    "two environments in one namespace would overwrite each other's objects"
                )
            namespaces[str(cfg.namespace)] = env
        self.review.namespace = self.review.namespace or f"{self.name}-review"
        for env, cfg in self.environments.items():
            # Review apps are labelled review-<slug> in their namespace: there, environment review-x is
            # the review app of slug x (same labels, same instance), and destroying one deletes the other.
            if self.review.enabled and env.startswith("review-") and cfg.namespace == self.review.namespace:
                raise ValueError(
                    f"environments.{env}: in the review namespace {cfg.namespace} this environment's objects "
                    f"would carry the labels of the review app for branch slug {env.removeprefix('review-')!r} "
                    f"(mlgit.dev/environment={env}), and destroying either would delete the other; rename the "
                    "environment (not review-...) or give it another namespace"
                )
        self.review.host = self.review.host or f"{{slug}}.{self.name}.review.{self.domain}"
        self.review.exposure = self.review.exposure or self.exposure
        self.review.tls = self.review.tls or self.tls
        sample_host = self.review.host_for("branch")
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
