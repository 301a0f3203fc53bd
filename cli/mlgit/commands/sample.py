from __future__ import annotations

from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg


def sample(
    directory: Path = DirArg,
    check: bool = typer.Option(
        False, "--check", help="Change nothing; exit 1 if the expected outputs differ from the model's answer (CI)."
    ),
) -> None:
    """Recompute the sample's expected outputs from the current model (after retraining) and show what changed.

    Floats change beyond model.sample.rtol/atol, other types at any difference. Only expected_outputs is rewritten.
    """
    from mlgit.config.load import load_project
    from mlgit.console import out
    from mlgit.errors import MlgitError
    from mlgit.samples.refresh import plan_refresh, write_refresh

    project = load_project(directory)
    refresh = plan_refresh(project)
    shown = refresh.path.relative_to(project.root)
    for change in refresh.changes:
        out.print(f"{'[yellow]changed[/]' if change.changed else '[green]same[/]'} {change.name}: {change.summary}")
    if not refresh.changed:
        out.print(f"[green]up to date[/]: {shown} holds what the model answers")
        return
    if check:
        raise MlgitError(
            f"{shown}: the expected outputs differ from what the model answers (listed above)",
            "run `mlgit sample` and commit the file, if the new answers are right",
        )
    write_refresh(refresh)
    out.print(f"wrote {shown}")
