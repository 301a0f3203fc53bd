"""`mlgit deploy`, `destroy`, `status` and `rollback`: thin commands over mlgit.cluster.

Every failure (credentials, RBAC 403, a missing namespace, an unreachable cluster, a rollout timeout)
is an MlgitError: a message, a hint, exit code 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from mlgit.commands.arguments import DirArg
from mlgit.errors import MlgitError
from mlgit.yes_no import yes_no

# The cluster modules import the kubernetes client (0.5 s): imported inside each command, so that
# `mlgit --help` and shell completion stay fast.

EnvOpt = typer.Option(..., "--env", help="Environment from mlgit.yaml, or `review` with --slug.")
SlugOpt = typer.Option(None, "--slug", help="Review app: the merge request's branch slug (with --env review).")
InstanceOpt = typer.Option(
    None, "--instance", help="One of the environment's instances (default: every instance, one after the other)."
)
ContextOpt = typer.Option(
    None, "--context", help="Kubernetes context (default: mlgit.yaml kube_context, then current)."
)
TimeoutOpt = typer.Option(600.0, "--timeout", help="Seconds to wait for the rollout or the deletion.", min=1)
# Set in CI/CD variables where the deploy token lacks pods/portforward, without editing the generated jobs.
SKIP_SMOKE_ENV = "MLGIT_DEPLOY_SKIP_SMOKE"


def smoke_skipped_by(flag: bool) -> str | None:
    """What turns the smoke check off: the --skip-smoke flag, else MLGIT_DEPLOY_SKIP_SMOKE; None: run it."""
    if flag:
        return "--skip-smoke"
    value = os.environ.get(SKIP_SMOKE_ENV, "")
    skip = yes_no(value) if value.strip() else False
    if skip is not None:
        return f"{SKIP_SMOKE_ENV}={value}" if skip else None
    raise MlgitError(f"{SKIP_SMOKE_ENV}={value!r} is not a yes/no value", "set it to 1 to skip the smoke check, or 0")


def deploy(
    env: str = EnvOpt,
    image: str | None = typer.Option(
        None, "--image", help="Image to run, REF@sha256:DIGEST (default: the pin in git)."
    ),
    slug: str | None = SlugOpt,
    instance: str | None = InstanceOpt,
    context: str | None = ContextOpt,
    timeout: float = TimeoutOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the diff against the cluster; change nothing."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the rollout and smoke-check it."),
    rollback: bool = typer.Option(True, "--rollback/--no-rollback", help="Roll back when the rollout fails."),
    force_conflicts: bool = typer.Option(
        False,
        "--force-conflicts",
        help="Take over fields that another owner declares too (its own server-side apply); without it deploy "
        "stops and names them. Imperative edits (kubectl edit/scale) are taken back either way.",
    ),
    skip_smoke: bool = typer.Option(
        False,
        "--skip-smoke",
        help=f"Skip the sample request, which needs RBAC pods/portforward; {SKIP_SMOKE_ENV}=1 does the same.",
    ),
    dotenv: Path | None = typer.Option(
        None,
        "--dotenv",
        help="Write MLGIT_DEPLOYED_IMAGE, and MLGIT_SMOKE_LATENCY_MS unless skipped, here (a GitLab dotenv report).",
    ),
    directory: Path = DirArg,
) -> None:
    """Apply an environment (server-side apply, prune), wait for the rollout, smoke-check it, print the URL."""
    from mlgit import targets
    from mlgit.cluster import smoke
    from mlgit.cluster.deploy import DeployOptions
    from mlgit.cluster.deploy import deploy as run_deploy
    from mlgit.config.load import load_project

    skipped_by = smoke_skipped_by(skip_smoke)
    project = load_project(directory)
    chosen = targets.targets_of(project.config, env, slug, instance, context=context)
    options = DeployOptions(
        image=image,
        timeout=timeout,
        dry_run=dry_run,
        wait=wait,
        rollback=rollback,
        force_conflicts=force_conflicts,
        smoke=None if skipped_by else smoke.open_endpoint,
        smoke_skipped_by=skipped_by or "",
        dotenv=dotenv,
    )
    # Instances one after the other: the first failure stops the rest, which keep their running version.
    for target in chosen:
        run_deploy(project, target, options)
    if instance is None and chosen[0].instance_name:
        from mlgit.cluster.instances import prune_undeclared

        prune_undeclared(project.config, env, context=context, timeout=timeout, dry_run=dry_run)


def destroy(
    env: str = EnvOpt,
    slug: str | None = SlugOpt,
    instance: str | None = InstanceOpt,
    yes: bool = typer.Option(False, "--yes", help="Confirm destroying a production-tier environment."),
    context: str | None = ContextOpt,
    timeout: float = TimeoutOpt,
    directory: Path = DirArg,
) -> None:
    """Delete this model's objects in one environment (and its TLS secret); other apps are untouched."""
    from rich.markup import escape

    from mlgit import targets
    from mlgit.cluster.client import connect
    from mlgit.cluster.destroy import destroy as run_destroy
    from mlgit.config.load import load_project
    from mlgit.console import out

    project = load_project(directory)
    chosen = targets.targets_of(project.config, env, slug, instance, context=context)
    if chosen[0].production and not yes:
        names = ", ".join(t.display_name for t in chosen)
        where = f"production environment {names} ({chosen[0].namespace})"
        question = f"Delete {project.config.name} from {where}?"
        if not sys.stdin.isatty() or not typer.confirm(question, err=True):
            again = f" --instance {instance}" if instance else ""
            raise MlgitError(
                f"{names} is a production environment: not destroyed",
                f"confirm with `mlgit destroy --env {env}{again} --yes`",
            )
    for target in chosen:
        changes = run_destroy(connect(target.context, target.context_setting), target, timeout)
        for change in changes:
            out.print(escape(str(change)))
        if not changes:
            out.print(f"{target.display_name}: nothing to destroy (already gone)")
    if instance is None and chosen[0].instance_name:
        from mlgit.cluster.instances import destroy_rest

        destroy_rest(project.config, env, context=context, timeout=timeout)


def status(
    env: str | None = typer.Option(None, "--env", help="One environment (default: all in mlgit.yaml), or review."),
    slug: str | None = SlugOpt,
    instance: str | None = InstanceOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    directory: Path = DirArg,
) -> None:
    """Per environment: desired vs running digest, replicas, URL, certificate, last rollout."""
    from mlgit import targets
    from mlgit.cluster.client import connect
    from mlgit.cluster.status import environment_status
    from mlgit.config.load import load_project
    from mlgit.console import out
    from mlgit.manifests.pins import read_pin

    project = load_project(directory)
    records = []
    if instance is not None and env is None:
        raise MlgitError("--instance needs --env: the environment the instance belongs to", "add --env ENV")
    names = [env] if env else list(project.config.environments)
    chosen = [t for name in names for t in targets.targets_of(project.config, name, slug, instance)]
    for target in chosen:
        name = target.env
        try:
            records.append(
                environment_status(
                    project, target, connect(target.context, target.context_setting), read_pin(project.root, name)
                )
            )
        except MlgitError as exc:  # one unreachable cluster must not hide the other environments
            records.append({"environment": target.display_name, "namespace": target.namespace, "error": exc.message})
    if instance is None:
        from mlgit.cluster.instances import warn_undeclared

        for first in {t.env: t for t in reversed(chosen) if t.instance_name}.values():
            with contextlib.suppress(MlgitError):  # an unreachable cluster is already in its instances' records
                warn_undeclared(connect(first.context, first.context_setting), project.config, first.env)
    if as_json:
        out.print_json(json.dumps(records))
    else:
        _table(records)
    if any("error" in r for r in records):
        raise typer.Exit(1)


def _table(records: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mlgit.console import out

    table = Table("environment", "desired", "running", "ready", "url", "certificate", "rollout")
    for r in records:
        if "error" in r:
            table.add_row(r["environment"], "", "", "", "", "", f"[red]{escape(r['error'])}[/]")
            continue
        short = lambda d: d[:19] if d else "-"  # noqa: E731  # sha256: plus 12 hex digits
        ready = f"{r['replicas']['ready']}/{r['replicas']['desired']}" if r["deployed"] else "-"
        running = short(r.get("running_digest") or r.get("running_image")) if r["deployed"] else "not deployed"
        table.add_row(
            r["environment"],
            short(r["desired_digest"] or r["desired_image"]),
            running,
            ready,
            r.get("url") or "-",
            r.get("certificate") or "-",
            escape(r.get("rollout", "-")),
        )
        canary = r.get("canary")
        if canary:  # the canary's row: its share of requests as the route has it (and the pin file wants)
            share = f"{canary['weight']}%" if canary["weight"] is not None else "no split"
            ready = f"{canary['replicas']['ready']}/{canary['replicas']['desired']}" if canary["deployed"] else "-"
            running = short(canary.get("running_digest") or canary.get("running_image"))
            table.add_row(
                f"  canary {share} (wants {canary['desired_weight']}%)",
                short(canary["desired_digest"] or canary["desired_image"]),
                running if canary["deployed"] else "not deployed",
                ready,
                "",
                "",
                escape(canary.get("rollout", "-")),
            )
    out.print(table)


def rollback(
    env: str = EnvOpt,
    revision: int | None = typer.Option(
        None, "--revision", help="ReplicaSet revision (default: the previous one).", min=1
    ),
    slug: str | None = SlugOpt,
    instance: str | None = typer.Option(
        None, "--instance", help="The instance to roll back, in an environment with instances."
    ),
    context: str | None = ContextOpt,
    timeout: float = TimeoutOpt,
    directory: Path = DirArg,
) -> None:
    """Roll the Deployment back to an earlier revision (like `kubectl rollout undo`) and wait for it."""
    from rich.markup import escape

    from mlgit import targets
    from mlgit.cluster import rollback as rollbacks
    from mlgit.cluster import rollout
    from mlgit.cluster.client import connect
    from mlgit.config.load import load_project
    from mlgit.console import err, out

    project = load_project(directory)
    chosen = targets.targets_of(project.config, env, slug, instance, context=context)
    if len(chosen) > 1:
        names = ", ".join(t.instance_name or "" for t in chosen)
        raise MlgitError(f"environment {env!r} has instances ({names}): roll back one", "add --instance NAME")
    target = chosen[0]
    cluster = connect(target.context, target.context_setting)
    # The stable's (a canary is rolled back by its abort merge request: docs/canary.md).
    deployment = cluster.get("apps/v1", "Deployment", target.name, target.namespace)
    if deployment is None:
        where = f"{target.display_name} (namespace {target.namespace})"
        raise MlgitError(f"{project.config.name} is not deployed in {where}")
    to = rollbacks.rollback(cluster, deployment, revision)
    err.print(f"rolling back deployment/{escape(deployment['metadata']['name'])} to revision {to}")
    rollout.wait_for_rollout(cluster, target.namespace, deployment["metadata"]["name"], timeout)
    out.print(f"[green]rolled back[/] {target.display_name} to revision {to}")
