from __future__ import annotations

import shlex
from pathlib import Path

import typer


def _example_names() -> list[str]:
    from mlgit.resources import shipped_dir

    return sorted(p.name for p in shipped_dir("examples").iterdir() if (p / "mlgit.yaml").is_file())


def init(
    directory: Path = typer.Argument(..., help="Directory to create the model repository in."),
    name: str = typer.Option(None, "--name", help="Model name (a DNS label); default: the example's or DIR's name."),
    model: Path = typer.Option(None, "--model", help="An .onnx file to build the repository around."),
    example: str = typer.Option(
        None,
        "--example",
        help="Start from a shipped example (default: iris-classifier).",
        autocompletion=lambda: _example_names(),
    ),
    domain: str = typer.Option(None, "--domain", help="Base DNS domain of the model's hosts."),
    registry: str = typer.Option(None, "--registry", help="Image repository, e.g. registry.gitlab.com/group/project."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty directory (other files are kept)."),
    git: bool = typer.Option(False, "--git", help="Make the first commit (git init if needed)."),
) -> None:
    """Create a complete model repository: mlgit.yaml, model, Dockerfile, manifests, pipeline, tests."""
    from mlgit.console import out
    from mlgit.scaffold import SCAFFOLD_TEMPLATES, InitOptions, init_repository

    kept = [rel for rel in SCAFFOLD_TEMPLATES if (directory / rel).is_file()]
    target = init_repository(
        InitOptions(
            target=directory,
            name=name,
            model=model,
            example=example,
            domain=domain,
            registry=registry,
            force=force,
            git=git,
        )
    )
    out.print(f"[green]created[/] {target}")
    for rel in kept:
        out.print(f"kept your {rel}")
    # Quoted so that the line can be pasted into a shell as it is, whatever the folder is called.
    out.print(f"next: cd {shlex.quote(str(directory))} && mlgit validate && mlgit serve", markup=False)
