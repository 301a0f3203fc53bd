"""What one deployment target looks like: an environment of mlgit.yaml, or one merge request's review app.

The renderer and the build both read these views, so a review app built at deploy time and an
environment rendered into deploy/ follow the same rules (names, labels, hosts, exposure).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgit.config.schema import AutoscalingConfig, ExposureConfig, MlgitConfig, TlsConfig
from mlgit.config.types import DNS_LABEL_RE
from mlgit.errors import MlgitError

REVIEW = "review"
LABEL_VALUE_MAX = 63


@dataclass(frozen=True)
class Target:
    """One deployment target, resolved from mlgit.yaml."""

    env: str
    """Environment name: a key of `environments`, or "review"."""
    namespace: str
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
    host: str | None
    """Public host; None for the review overlay before a slug is known."""
    exposure: ExposureConfig
    tls: TlsConfig
    replicas: int
    autoscaling: AutoscalingConfig | None
    """Set only when autoscaling is enabled."""

    @property
    def tls_secret(self) -> str:
        """The Secret cert-manager issues the certificate into: <name>-tls, after the objects.

        A Secret is shared state of its namespace: named after the instance (<model>-<env>), two models
        that land in one namespace got the same Secret and destroying one deleted the other's. Object
        names are unique per model in a namespace (two environments of a model never share one)."""
        return f"{self.name}-tls"

    @property
    def highly_available(self) -> bool:
        """Two or more replicas at all times: gets a PodDisruptionBudget and topology spread."""
        return (self.autoscaling.min_replicas if self.autoscaling else self.replicas) >= 2

    @property
    def allowed_namespaces(self) -> list[str]:
        """Namespaces whose traffic reaches the pods through the exposure (controller or gateway)."""
        exposure = self.exposure
        if exposure.kind != "gateway" or not exposure.gateway:
            return list(exposure.allowed_namespaces)
        # The default (ingress-nginx) is for Ingress; behind a Gateway only the gateway's namespace is.
        given = exposure.allowed_namespaces if "allowed_namespaces" in exposure.model_fields_set else []
        return [*given, *([exposure.gateway.namespace] if exposure.gateway.namespace not in given else [])]


def known_targets(config: MlgitConfig) -> list[str]:
    return [*config.environments, *([REVIEW] if config.review.enabled else [])]


def target(config: MlgitConfig, env: str, slug: str | None = None) -> Target:
    """The target `env` (with `slug` for a review app); MlgitError names the known ones otherwise."""
    if env not in known_targets(config):
        raise MlgitError(
            f"unknown environment {env!r}",
            f"choose one of: {', '.join(known_targets(config))} (environments of mlgit.yaml, and review)",
        )
    if env != REVIEW:
        if slug is not None:
            raise MlgitError(f"--slug is for review apps only, not for {env!r}", "drop --slug or use --env review")
        cfg = config.environments[env]
        assert cfg.namespace and cfg.host and cfg.exposure and cfg.tls  # resolved by MlgitConfig
        return Target(
            env=env,
            namespace=cfg.namespace,
            name=config.name,
            instance=f"{config.name}-{env}",
            environment_label=env,
            host=cfg.host,
            exposure=cfg.exposure,
            tls=cfg.tls,
            replicas=cfg.replicas,
            autoscaling=cfg.autoscaling if cfg.autoscaling.enabled else None,
        )
    review = config.review
    assert review.namespace and review.host and review.exposure and review.tls  # resolved by MlgitConfig
    if slug is not None:
        _check_slug(config, slug)
    return Target(
        env=REVIEW,
        namespace=review.namespace,
        name=f"{config.name}-{slug}" if slug else config.name,
        instance=f"{config.name}-{REVIEW}" + (f"-{slug}" if slug else ""),
        environment_label=REVIEW + (f"-{slug}" if slug else ""),
        host=review.host.replace("{slug}", slug) if slug else None,
        exposure=review.exposure,
        tls=review.tls,
        replicas=1,
        autoscaling=None,
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


def labels(config: MlgitConfig, tgt: Target) -> dict[str, str]:
    """The labels of every object of `tgt`, except app.kubernetes.io/instance (also in selectors)."""
    return {
        "app.kubernetes.io/name": config.name,
        "app.kubernetes.io/version": config.model.version,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": config.name,
        "app.kubernetes.io/managed-by": "mlgit",
        "mlgit.dev/model": config.name,
        "mlgit.dev/environment": tgt.environment_label,
    }
