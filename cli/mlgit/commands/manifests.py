"""`mlgit manifests`: the Kubernetes objects of an environment, as `mlgit deploy` would apply them."""

from __future__ import annotations

from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg

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
    instance: str | None = typer.Option(
        None, "--instance", help="One of the environment's instances (default: every instance, one after the other)."
    ),
) -> None:
    """Print the environment's manifests: its overlay built by `kubectl kustomize`."""
    from mlgit.config.load import load_project
    from mlgit.manifests.build import build_env_yaml

    text = build_env_yaml(load_project(directory), env, image=image, slug=slug, instance=instance)
    typer.echo(text, nl=False)


@app.command("diff")
def diff(
    directory: Path = DirArg,
    env: str = typer.Option(..., "--env", "-e", help="Environment whose pin the merge request changes."),
    base: str = typer.Option(
        ..., "--base", help="Commit to compare with, e.g. $CI_MERGE_REQUEST_DIFF_BASE_SHA (a ref or a SHA)."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Also write the diff to this file (its folders are created)."
    ),
) -> None:
    """Print how the environment's manifests change between its pin at --base and the pin in the working tree.

    The promotion merge request's pipeline shows it; exit 0 whatever the diff, 1 on an error.
    """
    from mlgit.config.load import load_project
    from mlgit.manifests.diff import base_diff, write_diff

    text = base_diff(load_project(directory), env, base)
    if output is not None:
        write_diff(output, text)
    typer.echo(text or f"the rendered manifests of {env} do not change\n", nl=False)
