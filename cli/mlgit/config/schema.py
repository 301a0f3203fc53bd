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
from mlgit.config.auth import AuthConfig, default_auth
from mlgit.config.batch import BatchConfig
from mlgit.config.canary import CanaryConfig, check_canary_exposure, check_canary_label
from mlgit.config.instances import InstanceConfig, resolve_instances
from mlgit.config.monitoring import MonitoringConfig, resolve_monitoring
from mlgit.config.serving import AutoscalingConfig, ImageConfig, ModelConfig, ServingConfig
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


# What a route may expose besides the inference API (/v2); more come with their features (feedback, grpc).
PublicExtra = Literal["docs", "ui"]


Platform = Literal["kubernetes", "openshift"]


class RouteConfig(Strict):
    termination: Literal["edge", "reencrypt"] = Field(
        "edge",
        description="edge: the OpenShift router terminates TLS and speaks HTTP to the pods; reencrypt: the pods "
        "serve HTTPS too, with an OpenShift service-serving certificate.",
    )


class ExposureConfig(Strict):
    kind: Literal["ingress", "gateway", "route", "none"] = Field(
        "ingress",
        description="ingress: networking.k8s.io Ingress; gateway: Gateway API HTTPRoute; route: OpenShift Route "
        "(TLS from cert-manager's openshift-routes controller); none.",
    )
    ingress_class: DnsName = Field("nginx", description="ingressClassName of the Ingress.")
    annotations: AnnotationMap = Field(
        default_factory=dict, description="Extra controller-specific Ingress/HTTPRoute annotations."
    )
    timeout_seconds: PositiveInt = Field(60, description="Route read/send timeout (slow models need more).")
    gateway: GatewayRef | None = Field(None, description="Required when kind is gateway.")
    route: RouteConfig = Field(default_factory=RouteConfig, description="The OpenShift Route, when kind is route.")
    allowed_namespaces: list[DnsLabel] = Field(
        default_factory=lambda: ["ingress-nginx"],
        description="Namespaces the NetworkPolicy admits traffic from (ingress controller / gateway). With kind "
        "route the OpenShift router's namespaces are admitted by their policy-group label, and this list only adds "
        "to them.",
    )
    public: list[PublicExtra] | None = Field(
        None,
        description="What the route exposes besides the inference API (/v2): docs is /docs and /openapi.json, ui "
        "the try-the-model page /ui/ (each also turns itself on in the server). Default: [docs, ui] in the "
        "development tier (dev, review apps), [] elsewhere, where the server then serves neither. /metrics is "
        "never public.",
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


class ReviewTlsConfig(TlsConfig):
    wildcard: bool | DnsName = Field(
        False,
        description="One certificate for every review app: true issues *.<review host without {slug}.> once, into "
        "the Secret <name>-review-wildcard-tls, with a cert-manager Certificate that outlives each review app "
        "(an ACME issuer needs a DNS-01 solver for wildcards); a name uses that existing Secret, provided by the "
        "platform, and mlgit issues nothing. Needs review.host to be {slug}.<domain part>.",
    )


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
    platform: Platform | None = Field(None, description="Overrides the top-level platform.")
    deploy: Literal["manual", "auto"] = Field("manual", description="Deploy job: a button, or automatic.")
    auth: AuthConfig | None = Field(None, description="Overrides serving.auth in this environment.")
    monitoring: MonitoringConfig | None = Field(
        None, description="Overrides the top-level monitoring in this environment, sub-section by sub-section."
    )
    canary: CanaryConfig | None = Field(
        None,
        description="Canaries here: a second Deployment <name>-canary behind the same host gets a share of the "
        "requests; both digests and the weight are state in the pin file (docs/canary.md).",
    )
    instances: dict[DnsLabel, InstanceConfig] = Field(
        default_factory=dict,
        description="Named instances of the model in this environment (per customer, per region), each with its "
        "own objects <name>-<instance>, host, replicas and resources, all running the environment's pinned image; "
        "an environment with instances runs only them (docs/instances.md).",
    )
    versions: list[str] | None = Field(
        None,
        min_length=1,
        description="Model versions this environment serves, of model.version and model.versions (default: all); "
        "the server loads only these and answers 404 for the others. Must include model.version, which the "
        "unversioned URLs serve.",
    )

    @model_validator(mode="after")
    def _instances_alone(self) -> EnvironmentConfig:
        if self.instances and self.canary is not None:
            raise ValueError(
                "instances: an environment with instances cannot have a canary yet; declare the canary in an "
                "environment without instances (docs/instances.md)"
            )
        return self


WILDCARD_PREFIX = "{slug}."


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
    tls: ReviewTlsConfig | None = Field(None, description="Overrides the top-level tls for review apps.")
    platform: Platform | None = Field(None, description="Overrides the top-level platform for review apps.")
    auth: AuthConfig | None = Field(None, description="Overrides serving.auth for review apps (default: none).")
    monitoring: MonitoringConfig | None = Field(
        None, description="Overrides the top-level monitoring for review apps, sub-section by sub-section."
    )

    def host_for(self, slug: str) -> str:
        """The host of the review app of branch `slug`: `host` with {slug} replaced."""
        assert self.host is not None  # resolved by MlgitConfig
        return self.host.replace("{slug}", slug)

    def wildcard_secret(self, model: str) -> str | None:
        """The Secret of the wildcard certificate every review app of `model` shares; None without one."""
        assert self.tls is not None  # resolved by MlgitConfig
        wildcard = self.tls.wildcard
        if wildcard is False or not self.tls.enabled:
            return None
        return wildcard if isinstance(wildcard, str) else f"{model}-review-wildcard-tls"

    @property
    def wildcard_host(self) -> str:
        """`*.<rest>` for review.host `{slug}.<rest>` (checked by MlgitConfig when wildcard is on)."""
        assert self.host is not None  # resolved by MlgitConfig
        return "*." + self.host.removeprefix(WILDCARD_PREFIX)


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
    platform: Platform = Field(
        "kubernetes",
        description="kubernetes: pods run as uid/gid 10001 (runAsUser, runAsGroup, fsGroup); openshift: no fixed "
        "ids, the restricted SCC assigns an arbitrary uid in group 0. Default for all environments.",
    )
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
    batch: BatchConfig = Field(
        default_factory=BatchConfig, description="`mlgit batch submit`: the model over a folder as a Kubernetes Job."
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig,
        description="Metrics scraping, alert rules and dashboard, in every environment that sets no `monitoring`.",
    )

    @model_validator(mode="after")
    def _resolve(self) -> MlgitConfig:
        review_exposure_given = self.review.exposure is not None  # before it is resolved below
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
            cfg.tier = cfg.tier or _default_tier(env)
            cfg.exposure = _public_extras(cfg.exposure or self.exposure, cfg.tier)
            cfg.tls = cfg.tls or self.tls
            cfg.platform = cfg.platform or self.platform
            cfg.auth = self._auth(cfg.auth, cfg.tier)
            cfg.monitoring = resolve_monitoring(cfg.monitoring, self.monitoring)
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
            resolve_instances(self.name, self.domain, env, cfg.host, cfg.instances)
            for name, instance in cfg.instances.items():
                assert instance.host is not None  # resolved just above
                _check_in_domain(instance.host, self.domain, f"environments.{env}.instances.{name}.host")
                autoscaling = instance.autoscaling or cfg.autoscaling
                resources = instance.resources or self.serving.resources
                if autoscaling.enabled and not resources.requests.cpu:
                    raise ValueError(
                        f"environments.{env}.instances.{name}.autoscaling: a CPU-utilisation HPA needs "
                        "resources.requests.cpu"
                    )
            self.model.check_versions(cfg.versions, f"environments.{env}.versions")
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
        # Review apps are the development tier (mlgit.targets.REVIEW_TIER).
        self.review.exposure = _public_extras(self.review.exposure or self.exposure, "development")
        self.review.auth = self._auth(self.review.auth, "development")
        self.review.monitoring = resolve_monitoring(self.review.monitoring, self.monitoring)
        self.review.tls = self.review.tls or ReviewTlsConfig(**self.tls.model_dump())
        self.review.platform = self.review.platform or self.platform
        sample_host = self.review.host_for("branch")
        if "{slug}" not in self.review.host or not DNS_NAME_RE.match(sample_host):
            raise ValueError(
                f"review.host: {self.review.host!r} must be a DNS name containing {{slug}} (the branch slug)"
            )
        _check_in_domain(sample_host, self.domain, "review.host")
        exposure = self.review.exposure
        if exposure.kind == "route" and exposure.route.termination == "reencrypt":
            # Each review app would need its own service-serving certificate Secret, named per app at build
            # time: review apps re-encrypt never, and inherit an environments' reencrypt as edge.
            if not review_exposure_given:
                self.review.exposure = exposure.model_copy(update={"route": RouteConfig(termination="edge")})
            elif self.review.enabled:
                raise ValueError(
                    "review.exposure.route.termination: reencrypt is for environments; review apps use edge "
                    "(set review.exposure with route: {termination: edge})"
                )
        wildcard = self.review.tls.wildcard
        # A wildcard covers one DNS label: the slug must be the whole first label, with nothing else templated.
        if wildcard is not False and (
            not self.review.host.startswith(WILDCARD_PREFIX) or "{slug}" in self.review.host[len(WILDCARD_PREFIX) :]
        ):
            raise ValueError(
                f"review.tls.wildcard: a wildcard certificate covers {{slug}}.<rest> only, and review.host is "
                f"{self.review.host!r}; set review.host to {{slug}}.<a name in {self.domain}> (the default "
                f"{{slug}}.{self.name}.review.{self.domain} is one), or turn the wildcard off"
            )
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
        self.batch.check_environments([*self.environments, *(["review"] if self.review.enabled else [])])
        return self

    @model_validator(mode="after")
    def _canary_splittable(self) -> MlgitConfig:
        """A canary needs a route that splits requests by weight (docs/canary.md)."""
        for env, cfg in self.environments.items():
            if cfg.canary is None:
                continue
            assert cfg.exposure  # resolved by _resolve, which runs first
            check_canary_label(self.name, env)
            check_canary_exposure(env, cfg.canary, cfg.exposure.kind, cfg.exposure.ingress_class)
        return self

    @model_validator(mode="after")
    def _grpc_exposable(self) -> MlgitConfig:
        """gRPC is exposed wherever HTTP is (docs/grpc.md): refuse the exposures that cannot carry it."""
        if self.serving.grpc_port is None:
            return self
        for env, cfg in self.environments.items():
            assert cfg.exposure and cfg.tls  # resolved by _resolve, which runs first
            if cfg.exposure.kind == "route":
                raise ValueError(
                    f"environments.{env}.exposure.kind: route cannot carry serving.grpc_port: an OpenShift edge or "
                    "reencrypt Route speaks HTTP/1.1 to the pods, and gRPC needs HTTP/2; expose this environment with "
                    "kind ingress or gateway, or kind none (gRPC inside the cluster only), or unset serving.grpc_port"
                )
            if cfg.exposure.kind == "ingress" and not cfg.tls.enabled:
                raise ValueError(
                    f"environments.{env}.tls.enabled: false, but serving.grpc_port is set and ingress-nginx serves "
                    "HTTP/2, which gRPC needs, on its TLS port only; turn TLS on for this environment, or expose it "
                    "with kind gateway or none"
                )
        return self

    def _auth(self, own: AuthConfig | None, tier: Tier) -> AuthConfig:
        """An environment's auth: its own, else serving.auth, else the tier's default; the Secret named."""
        auth = own or self.serving.auth or default_auth(tier == "production")
        if auth.mode == "api-key" and auth.api_key.secret is None:
            auth.api_key.secret = f"{self.name}-api-keys"
        return auth

    def auth_of(self, env: str) -> AuthConfig:
        """The resolved auth of environment `env`, or of review apps for "review"."""
        auth = self.review.auth if env == "review" else self.environment(env).auth
        assert auth is not None  # resolved by MlgitConfig
        return auth

    def monitoring_of(self, env: str) -> MonitoringConfig:
        """The resolved monitoring of environment `env`, or of review apps for "review"."""
        monitoring = self.review.monitoring if env == "review" else self.environment(env).monitoring
        assert monitoring is not None  # resolved by MlgitConfig
        return monitoring

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


def _public_extras(exposure: ExposureConfig, tier: Tier) -> ExposureConfig:
    """`exposure` with `public` resolved for a tier: a copy, as environments share the top-level section."""
    if exposure.public is not None:
        return exposure
    return exposure.model_copy(update={"public": ["docs", "ui"] if tier == "development" else []})


def _check_in_domain(host: str, domain: str, field: str) -> None:
    if host != domain and not host.endswith("." + domain):
        raise ValueError(f"{field}: host {host!r} is outside the domain {domain!r}; use a name ending in .{domain}")
