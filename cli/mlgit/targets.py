"""What one deployment target is: an environment of mlgit.yaml, or one merge request's review app.

The one place its names, labels, selector, namespace, host, URL, tier and Kubernetes context are
derived. The renderer (deploy/ and .gitlab-ci.yml), the build, deploy, destroy, status and rollback
all read a `Target`, so what a command prints, what it selects on the cluster and what was rendered
cannot disagree. It depends only on the config: everything above it may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlgit.config.canary import CanaryConfig
from mlgit.config.schema import AutoscalingConfig, ExposureConfig, MlgitConfig, Platform, Tier, TlsConfig
from mlgit.config.serving import ResourcesConfig
from mlgit.config.types import DNS_LABEL_RE
from mlgit.errors import MlgitError

REVIEW = "review"
# Review apps come and go with merge requests; mlgit.yaml has no tier for them.
REVIEW_TIER: Tier = "development"
# The slug as GitLab expands it in a review job (environment:url, script): the review target "of the
# current merge request", rendered into .gitlab-ci.yml before any slug is known.
CI_SLUG = "$CI_ENVIRONMENT_SLUG"
LABEL_VALUE_MAX = 63

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MODEL_LABEL = "mlgit.dev/model"
ENVIRONMENT_LABEL = "mlgit.dev/environment"
# Instances of one environment share its namespace and environment label: this label tells them apart.
INSTANCE_LABEL = "mlgit.dev/instance"


@dataclass(frozen=True)
class Target:
    """One deployment target, resolved from mlgit.yaml (and `--context`)."""

    model: str
    """The model's name (mlgit.yaml `name`)."""
    model_version: str
    env: str
    """Environment name: a key of `environments`, or "review"."""
    slug: str | None
    """The review app's branch slug; None for environments and for the review overlay in deploy/."""
    name: str
    """Name of every object of the target (review apps: <model>-<slug>)."""
    instance: str
    """app.kubernetes.io/instance: <model>-<env>, or <model>-review-<slug>.

    Ambiguous across models (model `a` environment `b-c` and model `a-b` environment `c` are both
    `a-b-c`, as are their default namespaces), and kept so: it is part of every Deployment's selector,
    which Kubernetes never lets change, so renaming it would break every deployed environment. Selectors
    also carry app.kubernetes.io/name (the model) and nothing is named after the instance: the pair is
    unique even where two models share a namespace."""
    environment_label: str
    """mlgit.dev/environment: the environment name, or review-<slug>."""
    namespace: str
    host: str | None
    """Public host; None for the review overlay before a slug is known."""
    exposure: ExposureConfig
    tls: TlsConfig
    tier: Tier
    context: str | None
    """Kubernetes context: `--context`, else mlgit.yaml kube_context; None: the kubeconfig's current one."""
    create_namespace: bool
    replicas: int
    autoscaling: AutoscalingConfig | None
    """Set only when autoscaling is enabled."""
    platform: Platform
    """kubernetes, or openshift (no fixed uid/gid: the restricted SCC assigns them)."""
    wildcard_secret: str | None = None
    """Review apps with review.tls.wildcard: the Secret of the certificate they all share."""
    instance_name: str | None = None
    """One of the environment's `instances` (objects <model>-<instance>); None for an environment without."""
    resources: ResourcesConfig | None = None
    """The instance's own pod resources; None: serving.resources, as the base has them."""
    canary: CanaryConfig | None = None
    """environments.<env>.canary: a second Deployment `canary_name` behind the same host (docs/canary.md)."""

    @property
    def canary_name(self) -> str:
        """Name of the canary Deployment and Service (and prefix of its other objects)."""
        return f"{self.name}-canary"

    @property
    def canary_instance(self) -> str:
        """app.kubernetes.io/instance of the canary's pods: another instance, so that the stable Deployment's
        selector (immutable, unchanged since the environment began) and Service never select them."""
        return f"{self.instance}-canary"

    @property
    def display_name(self) -> str:
        """The target in messages: `dev`, `prod/eu` (an instance), or `review (my-branch)`."""
        if self.instance_name:
            return f"{self.env}/{self.instance_name}"
        return f"{self.env} ({self.slug})" if self.slug else self.env

    @property
    def production(self) -> bool:
        return self.tier == "production"

    @property
    def context_setting(self) -> str:
        """Where mlgit.yaml sets this target's Kubernetes context, for messages."""
        return "review.kube_context" if self.env == REVIEW else f"environments.{self.env}.kube_context"

    @property
    def labels(self) -> dict[str, str]:
        """The labels of every object of the target, except app.kubernetes.io/instance (also in selectors)."""
        return {
            "app.kubernetes.io/name": self.model,
            "app.kubernetes.io/version": self.model_version,
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": self.model,
            MANAGED_BY_LABEL: "mlgit",
            MODEL_LABEL: self.model,
            ENVIRONMENT_LABEL: self.environment_label,
            **({INSTANCE_LABEL: self.instance_name} if self.instance_name else {}),
        }

    @property
    def selector(self) -> str:
        """Selects exactly this model's objects in this target on a cluster, nothing else's (an instance's:
        not its sibling instances')."""
        labels = self.labels
        keys = (MANAGED_BY_LABEL, MODEL_LABEL, ENVIRONMENT_LABEL, *([INSTANCE_LABEL] if self.instance_name else []))
        return ",".join(f"{k}={labels[k]}" for k in keys)

    @property
    def url(self) -> str | None:
        """The public URL: https when mlgit terminates TLS (cert-manager), no trailing slash, so that API
        paths append as `$URL/v2/...`; None without exposure, or before a review app has a slug."""
        if self.exposure.kind == "none" or self.host is None:
            return None
        return url(self.host, https=self.tls.enabled)

    @property
    def grpc_host(self) -> str | None:
        """The host gRPC clients connect to (port 443) when serving.grpc_port is set: the public host itself
        behind an Ingress (ingress-nginx tells gRPC from HTTP by path), grpc.<host> behind a Gateway (a
        GRPCRoute and an HTTPRoute sharing a hostname on one listener conflict: Gateway API accepts only the
        older). None for kinds route and none, and before a review app has a slug; review apps get no gRPC
        exposure at all (docs/grpc.md)."""
        if self.host is None or self.exposure.kind not in ("ingress", "gateway"):
            return None
        return f"grpc.{self.host}" if self.exposure.kind == "gateway" else self.host

    @property
    def tls_secret(self) -> str:
        """The Secret cert-manager issues the certificate into: <name>-tls, after the objects.

        A Secret is shared state of its namespace: named after the instance (<model>-<env>), two models
        that land in one namespace got the same Secret and destroying one deleted the other's. Object
        names are unique per model in a namespace (two environments of a model never share one).
        Review apps with a wildcard certificate all name its Secret instead."""
        return self.wildcard_secret or f"{self.name}-tls"

    @property
    def highly_available(self) -> bool:
        """Two or more replicas at all times: gets a PodDisruptionBudget and topology spread."""
        return (self.autoscaling.min_replicas if self.autoscaling else self.replicas) >= 2

    @property
    def allowed_namespaces(self) -> list[str]:
        """Namespaces whose traffic reaches the pods through the exposure (controller or gateway)."""
        exposure = self.exposure
        if exposure.kind == "route":
            # The router's namespaces are admitted by their policy-group label; the default list is ingress-nginx's.
            return list(exposure.allowed_namespaces) if "allowed_namespaces" in exposure.model_fields_set else []
        if exposure.kind != "gateway" or not exposure.gateway:
            return list(exposure.allowed_namespaces)
        # The default (ingress-nginx) is for Ingress; behind a Gateway only the gateway's namespace is.
        given = exposure.allowed_namespaces if "allowed_namespaces" in exposure.model_fields_set else []
        return [*given, *([exposure.gateway.namespace] if exposure.gateway.namespace not in given else [])]


def url(host: str, *, https: bool) -> str:
    """The one URL form: no trailing slash, so that API paths append as `$URL/v2/...`."""
    return f"{'https' if https else 'http'}://{host}"


def known_targets(config: MlgitConfig) -> list[str]:
    """The environments of mlgit.yaml, and review when review apps are enabled."""
    return [*config.environments, *([REVIEW] if config.review.enabled else [])]


def target(
    config: MlgitConfig, env: str, slug: str | None = None, *, context: str | None = None, overlay: bool = False
) -> Target:
    """The target `env` (with `slug` for a review app); MlgitError names the known ones otherwise.

    `context` is `--context`, which wins over mlgit.yaml kube_context. `overlay`: the target as
    deploy/overlays/<env> holds it; for review that is before any slug (no host, no URL), and without
    it review needs a slug.
    """
    if env not in known_targets(config):
        review_apps = ", and review" if config.review.enabled else ""
        raise MlgitError(
            f"unknown environment {env!r}",
            f"choose one of: {', '.join(known_targets(config))} (environments of mlgit.yaml{review_apps})",
        )
    if env != REVIEW:
        if slug is not None:
            raise MlgitError(f"--slug is for review apps only, not for {env!r}", "drop --slug or use --env review")
        cfg = config.environments[env]
        assert cfg.namespace and cfg.host and cfg.exposure and cfg.tls and cfg.tier  # resolved by MlgitConfig
        return Target(
            model=config.name,
            model_version=config.model.version,
            env=env,
            slug=None,
            name=config.name,
            instance=f"{config.name}-{env}",
            environment_label=env,
            namespace=cfg.namespace,
            host=cfg.host,
            exposure=cfg.exposure,
            tls=cfg.tls,
            tier=cfg.tier,
            context=context or cfg.kube_context,
            create_namespace=cfg.create_namespace,
            replicas=cfg.replicas,
            autoscaling=cfg.autoscaling if cfg.autoscaling.enabled else None,
            platform=cfg.platform or config.platform,
            canary=cfg.canary,
        )
    if slug is None and not overlay:
        raise MlgitError(
            "a review app needs its branch slug: --env review needs --slug SLUG",
            "pass the merge request's $CI_ENVIRONMENT_SLUG",
        )
    if slug is not None:
        _check_slug(config, slug)
    return _review(config, slug, context)


def instance_target(config: MlgitConfig, env: str, instance: str, *, context: str | None = None) -> Target:
    """Instance `instance` of environment `env`; MlgitError names the environment's instances otherwise."""
    base = target(config, env, context=context)
    instances = config.environments[env].instances
    if instance not in instances:
        known = f"its instances are {', '.join(instances)}" if instances else "it declares no instances"
        raise MlgitError(
            f"environment {env!r} has no instance {instance!r}: {known}",
            f"use one of environments.{env}.instances in mlgit.yaml, or drop --instance",
        )
    own = instances[instance]
    assert own.host  # resolved by MlgitConfig
    autoscaling = own.autoscaling or config.environments[env].autoscaling
    return replace(
        base,
        name=f"{config.name}-{instance}",
        instance=f"{config.name}-{env}-{instance}",
        host=own.host,
        replicas=own.replicas or base.replicas,
        autoscaling=autoscaling if autoscaling.enabled else None,
        instance_name=instance,
        resources=own.resources,
    )


def targets_of(
    config: MlgitConfig, env: str, slug: str | None = None, instance: str | None = None, *, context: str | None = None
) -> list[Target]:
    """What a command on `env` acts on: the environment, or each of its instances (only `instance`, if given)."""
    if instance is not None:
        if env == REVIEW:
            raise MlgitError("--instance is for environments with instances, not review apps", "drop --instance")
        return [instance_target(config, env, instance, context=context)]
    if env != REVIEW and env in config.environments and config.environments[env].instances:
        return [instance_target(config, env, name, context=context) for name in config.environments[env].instances]
    return [target(config, env, slug, context=context)]


def pipeline_review_target(config: MlgitConfig) -> Target:
    """The review app as .gitlab-ci.yml names it: its slug is GitLab's `$CI_ENVIRONMENT_SLUG`, expanded
    by GitLab at run time (environment:url). Never from user input: `target` checks every given slug."""
    return _review(config, CI_SLUG, None)


def _review(config: MlgitConfig, slug: str | None, context: str | None) -> Target:
    review = config.review
    assert review.namespace and review.exposure and review.tls  # resolved by MlgitConfig
    suffix = f"-{slug}" if slug else ""
    return Target(
        model=config.name,
        model_version=config.model.version,
        env=REVIEW,
        slug=slug,
        name=config.name + suffix,
        instance=f"{config.name}-{REVIEW}{suffix}",
        environment_label=REVIEW + suffix,
        namespace=review.namespace,
        host=review.host_for(slug) if slug else None,
        exposure=review.exposure,
        tls=review.tls,
        tier=REVIEW_TIER,
        context=context or review.kube_context,
        # Review apps share one namespace that comes and goes with them; mlgit.yaml has no switch for it.
        create_namespace=True,
        replicas=1,
        autoscaling=None,
        platform=review.platform or config.platform,
        wildcard_secret=review.wildcard_secret(config.name),
    )


def _check_slug(config: MlgitConfig, slug: str) -> None:
    if not DNS_LABEL_RE.match(slug):
        raise MlgitError(
            f"review slug {slug!r} is not a DNS label",
            "pass GitLab's $CI_ENVIRONMENT_SLUG (lowercase letters, digits and '-')",
        )
    # The longest derived value: the instance label <name>-review-<slug> (Kubernetes label values).
    longest = len(f"{config.name}-{REVIEW}-{slug}")
    if longest > LABEL_VALUE_MAX:
        raise MlgitError(
            f"review slug {slug!r} is too long for model {config.name!r}: "
            f"'{config.name}-{REVIEW}-{slug}' has {longest} characters, labels allow {LABEL_VALUE_MAX}",
            "use a shorter slug ($CI_ENVIRONMENT_SLUG has at most 24 characters) or a shorter model name",
        )
