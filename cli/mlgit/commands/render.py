from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mlgit.commands.arguments import DirArg

if TYPE_CHECKING:  # imported when run: `mlgit --help` stays fast
    from mlgit.render import Drift


def render(
    directory: Path = DirArg,
    check: bool = typer.Option(
        False,
        "--check",
        help="Change nothing; list the files that differ from mlgit.yaml with a unified diff, exit 1 if any do.",
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Also delete the overlays (and image pins) of environments mlgit.yaml no longer declares.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="With --check: print the result as one JSON object on stdout (the diffs included)."
    ),
) -> None:
    """Regenerate every generated file (pipeline, manifests, runtime settings, Dockerfile) from mlgit.yaml."""
    from mlgit import render as renderer
    from mlgit.config.load import load_project
    from mlgit.console import err, out
    from mlgit.errors import ExitCode, MlgitError

    if as_json and not check:
        raise MlgitError(
            "--json applies to --check only", "run `mlgit render --check --json`", exit_code=ExitCode.USAGE
        )
    if prune and check:
        raise MlgitError("--prune changes files; --check changes nothing", exit_code=ExitCode.USAGE)
    project = load_project(directory)
    if check:
        drift = renderer.drift(project)
        if as_json:
            typer.echo(json.dumps(_as_json(drift), indent=2))
        else:
            for path in drift.changed:
                typer.echo(drift.diffs[path], nl=False)
            for label, paths in (("differs", drift.changed), ("missing", drift.missing), ("stale", drift.stale)):
                for path in paths:
                    err.print(f"[red]{label}[/]: {path}", highlight=False)
            for dropped in drift.dropped:
                err.print(f"[red]dropped environment[/]: {dropped.describe()}", highlight=False)
        if not drift.clean:
            if not as_json:
                fix = "`mlgit render --prune`" if drift.dropped else "`mlgit render`"
                err.print(f"[red]generated files are out of date with mlgit.yaml[/]; run {fix} and commit")
            raise typer.Exit(1)
        if not as_json:
            out.print(f"[green]ok[/] {drift.generated} generated files match mlgit.yaml")
        return
    drift = renderer.render(project, prune=prune)
    touched = len(drift.changed) + len(drift.missing) + len(drift.stale)
    for path in drift.changed + drift.missing:
        out.print(f"wrote {path}")
    for path in drift.stale:
        out.print(f"removed {path}")
    if not touched:
        out.print("[green]up to date[/]: nothing changed")


def _as_json(drift: Drift) -> dict[str, object]:
    return {
        "ok": drift.clean,
        "generated": drift.generated,
        "changed": [{"path": path, "diff": drift.diffs[path]} for path in drift.changed],
        "missing": drift.missing,
        "stale": drift.stale,
        "dropped_environments": [{"environment": d.env, "pin": d.pin} for d in drift.dropped],
    }
