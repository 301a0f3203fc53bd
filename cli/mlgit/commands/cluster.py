"""`mlgit deploy`, `destroy`, `status` and `rollback`: thin commands over mlgit.cluster.

Every failure (credentials, RBAC 403, a missing namespace, an unreachable cluster, a rollout timeout)
is an MlgitError: a message, a hint, exit code 1.
"""

from __future__ import annotations

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
    target = targets.target(project.config, env, slug, context=context)
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
    run_deploy(project, target, options)


def destroy(
    env: str = EnvOpt,
    slug: str | None = SlugOpt,
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
    target = targets.target(project.config, env, slug, context=context)
    if target.production and not yes:
        where = f"production environment {target.display_name} ({target.namespace})"
        question = f"Delete {project.config.name} from {where}?"
        if not sys.stdin.isatty() or not typer.confirm(question, err=True):
            raise MlgitError(
                f"{target.display_name} is a production environment: not destroyed",
                f"confirm with `mlgit destroy --env {env} --yes`",
            )
    changes = run_destroy(connect(target.context, target.context_setting), target, timeout)
    for change in changes:
        out.print(escape(str(change)))
    if not changes:
        out.print(f"{target.display_name}: nothing to destroy (already gone)")


def status(
    env: str | None = typer.Option(None, "--env", help="One environment (default: all in mlgit.yaml), or review."),
    slug: str | None = SlugOpt,
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
    for name in [env] if env else list(project.config.environments):
        target = targets.target(project.config, name, slug)
        try:
            records.append(
                environment_status(
                    project, target, connect(target.context, target.context_setting), read_pin(project.root, name)
                )
            )
        except MlgitError as exc:  # one unreachable cluster must not hide the other environments
            records.append({"environment": target.display_name, "namespace": target.namespace, "error": exc.message})
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
    out.print(table)


def rollback(
    env: str = EnvOpt,
    revision: int | None = typer.Option(
        None, "--revision", help="ReplicaSet revision (default: the previous one).", min=1
    ),
    slug: str | None = SlugOpt,
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
    target = targets.target(project.config, env, slug, context=context)
    cluster = connect(target.context, target.context_setting)
    deployments = cluster.list("apps/v1", "Deployment", target.namespace, target.selector)
    deployment = deployments[0] if deployments else None
    if deployment is None:
        where = f"{target.display_name} (namespace {target.namespace})"
        raise MlgitError(f"{project.config.name} is not deployed in {where}")
    to = rollbacks.rollback(cluster, deployment, revision)
    err.print(f"rolling back deployment/{escape(deployment['metadata']['name'])} to revision {to}")
    rollout.wait_for_rollout(cluster, target.namespace, deployment["metadata"]["name"], timeout)
    out.print(f"[green]rolled back[/] {target.display_name} to revision {to}")
