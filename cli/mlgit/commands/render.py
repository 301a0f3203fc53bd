from __future__ import annotations

from pathlib import Path

import typer

from mlgit.commands.validate import DirArg


def render(
    directory: Path = DirArg,
    check: bool = typer.Option(
        False, "--check", help="Change nothing; list files that differ from mlgit.yaml and exit 1 if any do."
    ),
) -> None:
    """Regenerate every generated file (pipeline, manifests, runtime settings, Dockerfile) from mlgit.yaml."""
    from mlgit import render as renderer
    from mlgit.config.load import load_project
    from mlgit.console import err, out

    project = load_project(directory)
    if check:
        drift = renderer.drift(project)
        for label, paths in (("differs", drift.changed), ("missing", drift.missing), ("stale", drift.stale)):
            for path in paths:
                err.print(f"[red]{label}[/]: {path}")
        if not drift.clean:
            err.print("[red]generated files are out of date with mlgit.yaml[/]; run `mlgit render` and commit")
            raise typer.Exit(1)
        out.print(f"[green]ok[/] {drift.generated} generated files match mlgit.yaml")
        return
    drift = renderer.render(project)
    touched = len(drift.changed) + len(drift.missing) + len(drift.stale)
    for path in drift.changed + drift.missing:
        out.print(f"wrote {path}")
    for path in drift.stale:
        out.print(f"removed {path}")
    if not touched:
        out.print("[green]up to date[/]: nothing changed")
