"""mlgit.yaml -> the model repository's .gitlab-ci.yml (inline or component mode) and mlgit's component.

Both modes and the component render the same job templates (pipelines/jobs/): the inline file holds
every job; the component holds the config-independent ones with `$[[ inputs.* ]]` in place of values,
and a component-mode .gitlab-ci.yml includes it and adds the jobs that follow from mlgit.yaml.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlgit import __version__
from mlgit.analysis.measure import window_seconds
from mlgit.config.load import Project
from mlgit.config.schema import EnvironmentConfig, MlgitConfig
from mlgit.files import RenderedFile
from mlgit.policy.pipeline import GITLAB_CI
from mlgit.policy.settings import DEFAULT_WAIVER_MAX_DAYS
from mlgit.resources import shipped_dir
from mlgit.targets import pipeline_review_target, target, targets_of
from mlgit.templating import render_template

# Upstream's image; buildah needs no daemon and no privileged runner.
BUILDAH_IMAGE = "quay.io/buildah/stable:v1.38.1"
COMPONENT_TEMPLATE = "templates/model-pipeline.yml.j2"


def _job_when(mode: str) -> str:
    return "on_success" if mode == "auto" else "manual"


def _environment(config: MlgitConfig, name: str, env: EnvironmentConfig, first: str | None) -> dict[str, Any]:
    built = name == first
    tgt = target(config, name)
    # Later environments deploy what a promotion pinned; auto_deploy lets that merge deploy by itself,
    # except in production, which deploys by itself only when its own `deploy: auto` says so
    # (and policy MLGIT-CI-002 then denies it).
    promoted_auto = not built and config.promotion.auto_deploy and not tgt.production
    automatic = env.deploy == "auto" or promoted_auto
    # A deploy and a destroy job, and a GitLab environment, per instance (prod/eu); else the environment's own.
    deployments = [
        {
            "job": f"{name}-{t.instance_name}" if t.instance_name else name,
            "environment": f"{name}/{t.instance_name}" if t.instance_name else name,
            "instance": t.instance_name,
            "url": t.url,
        }
        for t in targets_of(config, name)
    ]
    return {
        "name": name,
        "deployments": deployments,
        "deploy_jobs": [f"deploy-{d['job']}" for d in deployments],
        "tier": tgt.tier,
        "url": tgt.url,
        "kube_context": tgt.context,
        "source": "built" if built else "pinned",
        "when": "on_success" if automatic else "manual",
        "overlay": f"deploy/overlays/{name}",
        "namespace": tgt.namespace,
        "auth": config.auth_of(name),
        # A batch-<env> button where mlgit.yaml says where the environment's batch data lives.
        "batch": config.batch.for_environment(name).storage is not None,
        # An analyze-<env> job after each deploy of a canary (canaries come from promotions: never the first).
        "analysis_delay": f"{window_seconds(env.canary.analysis.window)} seconds" if env.canary and not built else None,
    }


def pipeline_context(project: Project) -> dict[str, Any]:
    """Everything the pipeline templates read, derived from mlgit.yaml."""
    config = project.config
    pipeline = config.pipeline
    order = config.promotion.order or []
    first = order[0] if order else None
    environments = [_environment(config, name, env, first) for name, env in config.environments.items()]
    return {
        "mlgit_version": __version__,
        "mode": pipeline.mode,
        "component_ref": f"{pipeline.component}@{pipeline.version}",
        "cli_image": f"{pipeline.cli_image}:{pipeline.version}",
        "buildah_image": BUILDAH_IMAGE,
        "image_repository": config.image.repository,
        # The CLI's own default, written out: a group CI/CD variable of the platform team overrides it.
        "waiver_max_days": DEFAULT_WAIVER_MAX_DAYS,
        "environments": environments,
        "promotion_order": order,
        "production_environments": [e["name"] for e in environments if e["tier"] == "production"],
        "pull_secrets": config.image.pull_secrets,
        "registry": config.image.registry,
        # Where the pods run, each namespace once: what the pull secrets must exist in.
        "namespaces": list(
            dict.fromkeys(
                [e["namespace"] for e in environments] + ([config.review.namespace] if config.review.enabled else [])
            )
        ),
        "review": _review(config),
    }


def _review(config: MlgitConfig) -> dict[str, Any]:
    review = config.review
    if not review.enabled:
        return {"enabled": False}
    # The review job's app, as GitLab names it once it expands the merge request's slug.
    app = pipeline_review_target(config)
    return {
        "enabled": True,
        "when": _job_when(review.deploy),
        "url": app.url,
        "tier": app.tier,
        "auto_stop_in": review.auto_stop_in,
        "kube_context": app.context,
        "namespace": app.namespace,
        "auth": config.auth_of(app.env),
    }


def gitlab_ci(project: Project) -> Iterator[RenderedFile]:
    """The model repository's .gitlab-ci.yml."""
    context = pipeline_context(project)
    yield RenderedFile(GITLAB_CI, render_template("pipelines", f"gitlab-ci.{context['mode']}.yml.j2", **context))


def component_text() -> str:
    """mlgit's CI/CD component (pipelines/templates/model-pipeline.yml), as it must be published."""
    keys = ("cli_image", "buildah_image", "image_repository", "waiver_max_days")
    inputs = {key: f"$[[ inputs.{key} ]]" for key in keys}
    return render_template(
        "pipelines",
        COMPONENT_TEMPLATE,
        default_buildah_image=BUILDAH_IMAGE,
        default_waiver_max_days=DEFAULT_WAIVER_MAX_DAYS,
        **inputs,
    )


def component_path() -> Path:
    """Where the published component lives in mlgit's own repository."""
    return shipped_dir("pipelines") / COMPONENT_TEMPLATE.removesuffix(".j2")
