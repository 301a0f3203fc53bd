"""Where an environment lives on a cluster: namespace, context, tier, and the labels that scope it."""

from __future__ import annotations

from dataclasses import dataclass

from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.manifests.envs import REVIEW, target

MANAGED_BY = "app.kubernetes.io/managed-by"
MODEL_LABEL = "mlgit.dev/model"
ENV_LABEL = "mlgit.dev/environment"


@dataclass(frozen=True)
class Target:
    """One deployed environment (a review app is environment `review` plus its slug)."""

    model: str
    env: str
    slug: str | None
    namespace: str
    label: str  # the value of mlgit.dev/environment on its objects: the env, or review-<slug>
    context: str | None
    tier: str
    create_namespace: bool

    @property
    def name(self) -> str:
        return f"{self.env} ({self.slug})" if self.slug else self.env

    @property
    def selector(self) -> str:
        """Selects exactly this model's objects in this environment, nothing else's."""
        return f"{MANAGED_BY}=mlgit,{MODEL_LABEL}={self.model},{ENV_LABEL}={self.label}"

    @property
    def context_setting(self) -> str:
        """Where mlgit.yaml sets this target's Kubernetes context, for messages."""
        return "review.kube_context" if self.slug else f"environments.{self.env}.kube_context"

    @property
    def production(self) -> bool:
        return self.tier == "production"


def resolve(project: Project, env: str, slug: str | None = None, context: str | None = None) -> Target:
    """The target of `--env`/`--slug`; the context is `--context` > mlgit.yaml kube_context > current."""
    config = project.config
    rendered = target(config, env, slug)  # the renderer's view: names and labels agree by construction
    if env == REVIEW:
        if not slug:
            raise MlgitError("--env review needs --slug SLUG", "pass the merge request's $CI_ENVIRONMENT_SLUG")
        # Review apps share one namespace that comes and goes with them; mlgit.yaml has no switch for it.
        kube_context, tier, create = config.review.kube_context, "development", True
    else:
        cfg = config.environments[env]
        kube_context, tier, create = cfg.kube_context, str(cfg.tier), cfg.create_namespace
    return Target(
        config.name, env, slug, rendered.namespace, rendered.environment_label, context or kube_context, tier, create
    )
