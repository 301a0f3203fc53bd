from __future__ import annotations

from pathlib import Path

import typer

DirArg = typer.Argument(Path("."), help="Model repository (the folder holding mlgit.yaml).")


def validate(directory: Path = DirArg) -> None:
    """Check mlgit.yaml, the ONNX model and its sample request; exit 1 naming file:line on a problem."""
    from mlgit.config.load import load_project
    from mlgit.console import out

    project = load_project(directory)
    sig = project.model.signature
    out.print(
        f"[green]ok[/] {project.config_path}: model {project.config.name} v{project.config.model.version}, "
        f"{len(sig.inputs)} input(s), {len(sig.outputs)} output(s), "
        f"environments {', '.join(project.config.environments)}"
    )
