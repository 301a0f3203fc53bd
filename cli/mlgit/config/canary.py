"""A canary declared in git: `environments.<env>.canary` (docs/canary.md).

The environment then runs two Deployments behind one host, the stable `<name>` and the canary `<name>-canary`.
These fields are the canary's configuration; what runs now (both digests, the current weight, the canary's
replicas) is state in the environment's pin file (mlgit.manifests.canary_state), which the canary merge
requests change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from mlgit.config.instances import LABEL_VALUE_MAX
from mlgit.config.types import PositiveInt, PrometheusDuration, Strict
from mlgit.errors import MlgitError

if TYPE_CHECKING:
    from mlgit.config.schema import MlgitConfig


class CanaryAnalysisConfig(Strict):
    """What `mlgit analyze` holds the canary to, against the stable, over the same window."""

    window: PrometheusDuration = Field("10m", description="How far back the analysis looks (a Prometheus duration).")
    min_requests: PositiveInt = Field(
        100, description="Fewest canary requests in the window for a verdict; fewer is inconclusive."
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Highest fraction of the canary's requests that may fail with a 5xx."
    )
    max_p99_ratio: float = Field(1.25, gt=0, description="Highest canary p99 latency as a multiple of the stable's.")
    max_p50_ratio: float = Field(1.25, gt=0, description="Highest canary p50 latency as a multiple of the stable's.")
    max_drift: float | None = Field(
        None,
        gt=0,
        description="Highest input drift score (PSI, the runtime's drift gauge) of the canary; null: not checked. "
        "Needs monitoring.drift on.",
    )


class CanaryConfig(Strict):
    """Canaries for this environment: a second Deployment that gets `weight` percent of the requests."""

    weight: int = Field(
        10,
        ge=0,
        le=100,
        description="Percent of requests a new canary starts with (`mlgit promote --canary`); the current weight "
        "is state in the pin file, which `mlgit canary weight` changes.",
    )
    replicas: PositiveInt = Field(1, description="Pods of the canary Deployment while a canary runs.")
    mirror: bool = Field(
        False,
        description="Also copy every request to the canary and discard its answers (shadow traffic): Gateway API "
        "(RequestMirror) and ingress-nginx (mirror-target); an OpenShift Route cannot.",
    )
    analysis: CanaryAnalysisConfig = Field(
        default_factory=CanaryAnalysisConfig, description="Thresholds of `mlgit analyze` (canary against stable)."
    )
    on_failure: Literal["open-abort-mr", "merge-abort-mr"] = Field(
        "open-abort-mr",
        description="What a failed analysis does: open the abort merge request (weight 0), or also merge it at once "
        "(still a commit in git).",
    )


def check_canary_exposure(env: str, canary: CanaryConfig, kind: str, ingress_class: str) -> None:
    """ValueError unless the environment's exposure can split requests between stable and canary."""
    where = f"environments.{env}.canary"
    if kind == "none":
        raise ValueError(
            f"{where}: the environment has exposure kind none, so nothing splits its requests; expose it with kind "
            "gateway, ingress or route, or remove the canary"
        )
    if kind == "ingress" and "nginx" not in ingress_class:
        raise ValueError(
            f"{where}: the split uses ingress-nginx's canary annotations, and exposure.ingress_class is "
            f"{ingress_class!r}; use an nginx class or exposure kind gateway"
        )
    if kind == "route" and canary.mirror:
        raise ValueError(f"{where}.mirror: an OpenShift Route cannot mirror requests; set mirror: false")


def check_canary_label(model: str, env: str) -> None:
    """ValueError unless the canary pods' instance label `<name>-<env>-canary` (Target.canary_instance) fits."""
    label = f"{model}-{env}-canary"
    if len(label) > LABEL_VALUE_MAX:
        raise ValueError(
            f"environments.{env}.canary: the canary's instance label {label!r} has {len(label)} characters, labels "
            f"allow {LABEL_VALUE_MAX}; use a shorter model or environment name"
        )


def canary_of(config: MlgitConfig, env: str) -> CanaryConfig:
    """environments.<env>.canary, for the commands that need one (promote --canary, canary, analyze);
    MlgitError when the environment is unknown or runs no canary."""
    try:
        canary = config.environment(env).canary
    except KeyError as exc:
        raise MlgitError(str(exc.args[0]), "name environments as mlgit.yaml declares them") from None
    if canary is None:
        raise MlgitError(
            f"environment {env} runs no canary: environments.{env}.canary is not set in mlgit.yaml",
            f"add `canary: {{weight: 10}}` to environments.{env} and run `mlgit render` (docs/canary.md)",
        )
    return canary
