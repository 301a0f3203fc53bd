"""`mlgit deploy`: render with the image pinned, apply, wait, smoke-check, prune; roll back on failure."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from mlgit.cluster import apply, diff, rollback, rollout
from mlgit.cluster.client import Cluster, connect
from mlgit.cluster.diagnose import diagnose
from mlgit.cluster.objects import Obj, describe, key
from mlgit.cluster.secrets import check_secrets
from mlgit.config.load import Project
from mlgit.console import err, out
from mlgit.errors import MlgitError
from mlgit.files import write_atomic
from mlgit.manifests.build import build_env
from mlgit.manifests.pins import read_pin
from mlgit.smoke import Endpoint, SmokeResult, smoke_check
from mlgit.targets import Target

EndpointFactory = Callable[[Cluster, dict[str, Any]], AbstractContextManager[Endpoint]]


@dataclass(frozen=True)
class DeployOptions:
    image: str | None = None
    timeout: float = 600.0
    dry_run: bool = False
    wait: bool = True
    rollback: bool = True
    force_conflicts: bool = False  # take fields over from another owner that declares them (see cluster.apply)
    smoke: EndpointFactory | None = None  # None: no smoke check, for the reason below
    smoke_skipped_by: str = "--skip-smoke"  # what turned the smoke check off, for the message
    dotenv: Path | None = None  # where to record the deploy for later pipeline jobs (promotion evidence)


def pinned_image(project: Project, target: Target, image: str | None) -> str:
    """`--image`, else the digest pinned in git; staging and production accept only digests."""
    if image is None:
        image = read_pin(project.root, target.env)
        if image is None:
            raise MlgitError(
                f"no image is pinned for environment {target.display_name} in git",
                "pass --image REGISTRY/PATH@sha256:DIGEST (the build job prints it)",
            )
    if "@sha256:" not in image and target.tier in ("production", "staging"):
        raise MlgitError(
            f"{target.tier} environment {target.display_name} deploys only digest-pinned images, not {image!r}",
            "use REF@sha256:DIGEST so that what was tested is exactly what runs",
        )
    return image


def _dry_run(cluster: Cluster, target: Target, objects: list[Obj], force_conflicts: bool) -> None:
    exists = apply.namespace_exists(cluster, target.namespace) is not False
    if not exists and not target.create_namespace:
        raise MlgitError(
            f"namespace {target.namespace} does not exist (context {cluster.context})",
            f"create it, or set environments.{target.env}.create_namespace: true in mlgit.yaml",
        )
    plan = diff.plan(cluster, objects, exists, force_conflicts)
    stale = apply.prunable(cluster, target, objects) if exists else []
    err.print(f"[dim]dry run, nothing changed: {escape(plan.note)}[/]")
    for text in plan.diffs:
        out.print(escape(text), end="")
    for k in stale:
        out.print(f"{escape(describe(k))} would be pruned")
    if not plan.diffs and not stale:
        out.print(f"{target.display_name}: no changes")


@dataclass(frozen=True)
class _Attempt:
    deployment: str
    before: dict[str, Any] | None  # the Deployment as it was before this deploy
    template_changed: bool


def _undo(cluster: Cluster, target: Target, options: DeployOptions, attempt: _Attempt) -> tuple[str, str]:
    """Diagnose one Deployment of a failed deploy and roll it back where that helps: (what to add to the
    error's message, what happened, for its hint)."""
    before = attempt.before
    live = cluster.get("apps/v1", "Deployment", attempt.deployment, target.namespace)
    if live is not None:
        try:
            for line in diagnose(cluster, live):
                err.print(f"  {escape(line)}")
        except MlgitError as exc:
            err.print(f"  [dim](no diagnosis: {escape(exc.message)})[/]")
    if before is None:
        return "", "this was the first deploy: nothing to roll back to; `mlgit destroy` removes it"
    if not options.rollback:
        which = f" --instance {target.instance_name}" if target.instance_name else ""
        restore = f"`mlgit rollback --env {target.env}{which}` restores the previous revision"
        return "", f"rollback skipped (--no-rollback); {restore}"
    if not attempt.template_changed:
        return "", "the pod template did not change in this deploy, so rolling back would not help"
    previous = rollback.revision_of(before)  # what served before this deploy
    if live is None or previous is None:
        return "", "the previous revision is unknown: nothing to roll back to"
    to = rollback.rollback(cluster, live, previous)
    err.print(f"[yellow]rolled back[/] deployment/{escape(live['metadata']['name'])} to revision {to}")
    try:
        rollout.wait_for_rollout(cluster, target.namespace, live["metadata"]["name"], options.timeout)
    except rollout.RolloutFailed as again:
        return f"the rollback to revision {to} did not finish either: {again.message}", ""
    return f"rolled back to revision {to}", "the previous version is serving again"


def _fail(
    cluster: Cluster, target: Target, options: DeployOptions, attempts: list[_Attempt], failure: MlgitError
) -> MlgitError:
    """Diagnose, roll back where that helps, and return the error deploy exits with.

    `attempts`: the stable Deployment, then the canary's when this deploy rolled it out; with both, only those
    whose pod template changed are rolled back (and named). The failure's own hint (say, the RBAC permission a
    smoke check lacked) comes first in the result's.
    """
    err.print(f"[red]deploy failed:[/] {escape(failure.message)}")
    changed = [a for a in attempts if a.template_changed]
    undone = changed if len(attempts) > 1 and changed else attempts[:1]
    message, hints = [failure.message], [failure.hint]
    for attempt in undone:
        done, what_happened = _undo(cluster, target, options, attempt)
        named = len(attempts) > 1 and bool(done)
        message.append(f"deployment/{attempt.deployment} {done}" if named else done)
        hints.append(what_happened)
    return MlgitError("; ".join(filter(None, message)), "; ".join(filter(None, hints)))


def _record(path: Path, image: str, result: SmokeResult | None) -> None:
    """A GitLab dotenv report: `mlgit promote` in a later job reads these as evidence.

    Without a smoke check (or without its sample, for want of credentials) there is no latency to report:
    promote then says it was not recorded."""
    latency = "" if result is None or result.latency_ms is None else f"MLGIT_SMOKE_LATENCY_MS={result.latency_ms:.1f}\n"
    write_atomic(path, f"MLGIT_DEPLOYED_IMAGE={image}\n{latency}")


def _report(changes: list[apply.Change]) -> None:
    for change in changes:
        if change.action != "unchanged":
            out.print(escape(str(change)))


def _report_pruned(pruned: list[apply.Change], applied: list[apply.Change], target: Target, image: str) -> None:
    _report(pruned)
    if not pruned and all(c.action == "unchanged" for c in applied):
        out.print(f"{target.display_name}: unchanged ({len(applied)} objects, image {image})")


def _rolled_out(target: Target, objects: list[Obj]) -> dict[str, Obj]:
    """The Deployments a deploy waits for and smoke-checks, by name: the stable first, then the canary while it
    runs replicas (docs/canary.md)."""
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    canary = deployments.pop(target.canary_name, None) if target.canary is not None else None
    if canary is not None and (canary.get("spec") or {}).get("replicas", 1) > 0:
        deployments[target.canary_name] = canary
    return deployments


def deploy(project: Project, target: Target, options: DeployOptions) -> None:
    image = pinned_image(project, target, options.image)
    objects = build_env(project, target.env, image=image, slug=target.slug, instance=target.instance_name)
    cluster = connect(target.context, target.context_setting)
    objects = apply.place(cluster, target, objects)
    # Before anything is applied (a dry run says the same): pods without their Secrets never start.
    check_secrets(cluster, project.config, target)
    if options.dry_run:
        _dry_run(cluster, target, objects, options.force_conflicts)
        return
    deployments = _rolled_out(target, objects)
    befores = {name: cluster.get("apps/v1", "Deployment", name, target.namespace) for name in deployments}
    changes = [c for c in [apply.ensure_namespace(cluster, target)] if c]
    changes += apply.apply_objects(cluster, objects, force_conflicts=options.force_conflicts)
    _report(changes)
    if not deployments or not options.wait:
        _report_pruned(apply.prune(cluster, target, objects), changes, target, image)
        return
    attempts = []
    for name, obj in deployments.items():
        changed = any(c.key == key(obj) and c.action != "unchanged" for c in changes)
        attempts.append(_Attempt(name, befores[name], changed))
    try:
        for name in deployments:
            waited = rollout.wait_for_rollout(cluster, target.namespace, name, options.timeout)
            err.print(f"rollout: {escape(waited)}" if len(deployments) == 1 else f"rollout of {name}: {escape(waited)}")
        result = None
        if options.smoke is None:
            skipped = f"smoke check skipped ({options.smoke_skipped_by}): the sample request was not sent"
            out.print(f"[yellow]{escape(skipped)}[/]")
        else:
            # The stable's result is the deploy's evidence; a running canary must pass the same check.
            for name in reversed(deployments):
                live = cluster.get("apps/v1", "Deployment", name, target.namespace)
                assert live is not None  # the rollout just completed
                with options.smoke(cluster, live) as endpoint:
                    result = smoke_check(endpoint, project)
                out.print(escape(str(result)) if len(deployments) == 1 else f"{escape(name)}: {escape(str(result))}")
        if options.dotenv is not None:
            _record(options.dotenv, image, result)
    except MlgitError as failure:
        raise _fail(cluster, target, options, attempts, failure) from None
    # Only now: a failed rollout rolls back to a revision whose objects must still exist.
    _report_pruned(apply.prune(cluster, target, objects), changes, target, image)
    where = target.url or f"service in namespace {target.namespace} (no public route)"
    out.print(f"[green]deployed[/] {target.display_name}: {where}")
