"""`mlgit manifests`: the Kubernetes objects of an environment, as `mlgit deploy` would apply them."""

from __future__ import annotations

from pathlib import Path

import typer

from mlgit.commands.validate import DirArg

app = typer.Typer(no_args_is_help=True, help="Kubernetes manifests of the model repository (deploy/).")


@app.callback()
def _manifests() -> None:
    """Kubernetes manifests of the model repository (deploy/)."""


@app.command("build")
def build(
    directory: Path = DirArg,
    env: str = typer.Option(..., "--env", "-e", help="Environment of mlgit.yaml, or review."),
    image: str | None = typer.Option(
        None, "--image", help="Image to run instead of the pinned one (REPOSITORY@sha256:... or REPOSITORY:TAG)."
    ),
    slug: str | None = typer.Option(None, "--slug", help="Review apps: the branch slug ($CI_ENVIRONMENT_SLUG)."),
) -> None:
    """Print the environment's manifests: its overlay built by `kubectl kustomize`."""
    from mlgit.config.load import load_project
    from mlgit.manifests.build import build_env_yaml

    typer.echo(build_env_yaml(load_project(directory), env, image=image, slug=slug), nl=False)
