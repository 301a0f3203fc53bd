"""`mlgit batch submit` and `mlgit batch status`: the model over a folder as a Kubernetes Indexed Job.

Thin commands over mlgit.cluster.batch_submit and batch_track. `mlgit batch` is a group: `run` (the local
runner, commands/batch.py) is its default, so `mlgit batch DIR --input ... --output ...` runs locally, and
`submit`/`status` work on a cluster. Exit codes: 0 the run was submitted (with --wait: every shard
succeeded), 1 a user error or a failed shard, 2 a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import typer
from typer.core import TyperGroup

from mlgit.commands.arguments import DirArg
from mlgit.commands.cluster import ContextOpt, SlugOpt

LOCAL = "run"


class LocalByDefault(TyperGroup):
    """A first argument that names no subcommand is the local run's: `mlgit batch DIR` is `mlgit batch run DIR`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and LOCAL in self.commands and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [LOCAL, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=LocalByDefault,
    help="Run the model over every file of a folder: locally (`run`, the default) or as a Kubernetes Job.",
    no_args_is_help=True,
)


@app.command("submit")
def submit(
    env: str = typer.Option(
        ..., "--env", help="Environment from mlgit.yaml (or review with --slug): its namespace, image, batch settings."
    ),
    input_uri: str = typer.Option(
        ...,
        "--input",
        help="Input folder: a path on the batch PVC (under batch.storage.pvc.mount) or s3://bucket/prefix.",
    ),
    output_uri: str = typer.Option(
        ..., "--output", help="Output folder, the same way; outputs that exist are skipped."
    ),
    parallelism: int | None = typer.Option(
        None, "--parallelism", min=1, help="Pods at once (default mlgit.yaml batch)."
    ),
    completions: int | None = typer.Option(
        None, "--completions", min=1, help="Shards: the files are split into this many (default mlgit.yaml batch)."
    ),
    image: str | None = typer.Option(
        None, "--image", help="Image to run, REF@sha256:DIGEST (default: the pin in git)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the run until it ends; exit 1 when a shard failed."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=1, help="With --wait: give up after this many seconds."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the Job; change nothing (no cluster needed)."),
    slug: str | None = SlugOpt,
    context: str | None = ContextOpt,
    directory: Path = DirArg,
) -> None:
    """Start an Indexed Job that runs the model image's batch runner, one pod per shard of the input files."""
    from mlgit import targets
    from mlgit.cluster.batch_submit import SubmitOptions
    from mlgit.cluster.batch_submit import submit as run_submit
    from mlgit.config.load import load_project

    project = load_project(directory)
    target = targets.target(project.config, env, slug, context=context)
    options = SubmitOptions(input_uri, output_uri, parallelism, completions, image, wait, timeout, dry_run)
    run_submit(project, target, options)


@app.command("status")
def status(
    env: str = typer.Option(..., "--env", help="Environment from mlgit.yaml, or review with --slug."),
    run: str | None = typer.Option(
        None, "--run", help="One run id: its shards and why any failed (default: every run)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    slug: str | None = SlugOpt,
    context: str | None = ContextOpt,
    directory: Path = DirArg,
) -> None:
    """The environment's batch runs, newest first: shards done and failed, input and output."""
    from mlgit import targets
    from mlgit.cluster import batch_track
    from mlgit.cluster.client import connect
    from mlgit.config.load import load_project
    from mlgit.errors import MlgitError

    project = load_project(directory)
    target = targets.target(project.config, env, slug, context=context)
    cluster = connect(target.context, target.context_setting)
    found = batch_track.runs(cluster, target)
    if run is not None:
        found = [r for r in found if r.run_id == run]
        if not found:
            raise MlgitError(
                f"no batch run {run} in {target.display_name} (namespace {target.namespace})",
                f"`mlgit batch status --env {env}` lists them; finished runs go after batch.ttl_seconds_after_finished",
            )
    records = [_record(r) for r in found]
    if run is not None:
        pods = batch_track.run_pods(cluster, target.namespace, target.model, run)
        records[0]["problems"] = batch_track.pod_problems(cluster, pods)
    _print(records, as_json, target.display_name)


def _record(run: Any) -> dict[str, Any]:
    state = run.outcome or ("running" if run.active else "pending")
    return {
        "run": run.run_id,
        "job": run.name,
        "state": state,
        "reason": run.reason,
        "shards": {"total": run.completions, "succeeded": len(run.succeeded), "failed": sorted(run.failed)},
        "input": run.annotations.get("mlgit.dev/batch-input", ""),
        "output": run.annotations.get("mlgit.dev/batch-output", ""),
        "created": run.created,
    }


def _print(records: list[dict[str, Any]], as_json: bool, where: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from mlgit.console import out

    if as_json:
        out.print_json(json.dumps(records))
        return
    if not records:
        out.print(f"{where}: no batch runs")
        return
    table = Table("run", "state", "shards", "failed", "input", "output", "created")
    for r in records:
        shards = r["shards"]
        table.add_row(
            r["run"],
            r["state"],
            f"{shards['succeeded']}/{shards['total']}",
            ",".join(map(str, shards["failed"])) or "-",
            escape(r["input"]),
            escape(r["output"]),
            r["created"],
        )
    out.print(table)
    for r in records:
        for problem in r.get("problems", []):
            out.print(f"  {escape(problem)}")
