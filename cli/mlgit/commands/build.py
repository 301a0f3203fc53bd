from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mlgit.commands.arguments import DirArg
from mlgit.errors import ExitCode, MlgitError


def _secrets(values: list[str]) -> dict[str, Path]:
    secrets = {}
    for value in values:
        options = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
        source = options.get("src") or options.get("source")
        if "id" not in options or not source:
            raise MlgitError(f"--secret {value!r}: write it as id=NAME,src=FILE", exit_code=ExitCode.USAGE)
        if not Path(source).is_file():
            raise MlgitError(f"--secret {value!r}: {source} is not a file", exit_code=ExitCode.USAGE)
        secrets[options["id"]] = Path(source)
    return secrets


def build(
    directory: Path = DirArg,
    tag: str | None = typer.Option(
        None,
        "--tag",
        help="Tag, or a full REPOSITORY:TAG. Default: image.repository:<short git SHA> (-dirty when tracked "
        "files changed); with --runtime, the pinned runtime image. 'latest' is refused.",
    ),
    push: bool = typer.Option(
        False,
        "--push",
        help="Push to the registry; print REPOSITORY@sha256:... on stdout. Credentials: MLGIT_REGISTRY_USER/"
        "PASSWORD, else CI_REGISTRY_USER/PASSWORD for CI_REGISTRY, else the docker config (docker login).",
    ),
    runtime_image: str | None = typer.Option(
        None, "--runtime-image", help="Build the model image FROM this runtime image (the RUNTIME_IMAGE build arg)."
    ),
    runtime: bool = typer.Option(
        False,
        "--runtime",
        help="Build the serving runtime image instead (from the serving_runtime/ shipped with mlgit, for this "
        "repo's serving.device), e.g. to host it in your own registry at image.runtime.",
    ),
    base_image: str | None = typer.Option(
        None, "--base-image", help="With --runtime: the base image (BASE_IMAGE build arg) instead of its default."
    ),
    secret: list[str] = typer.Option(
        [], "--secret", help="BuildKit secret id=NAME,src=FILE (e.g. id=ca for pip's CA bundle); repeatable."
    ),
    network: str | None = typer.Option(None, "--network", help="Network of RUN steps, e.g. host."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build every step anew (e.g. for base image updates)."),
) -> None:
    """Build the model image (BuildKit when available) from a minimal context; print its ID, or its digest with --push.

    Progress goes to stderr; stdout carries only the image ID, or with --push only REPOSITORY@sha256:...
    """
    from mlgit.build import images
    from mlgit.build.builder import build_image
    from mlgit.build.engine import docker_client
    from mlgit.build.push import push_image
    from mlgit.build.reference import resolve_reference
    from mlgit.config.load import load_project
    from mlgit.console import err, out

    if runtime and runtime_image:
        raise MlgitError(
            "--runtime builds the runtime image; --runtime-image is for model builds", exit_code=ExitCode.USAGE
        )
    if base_image and not runtime:
        raise MlgitError("--base-image only applies with --runtime", "the model image builds FROM the runtime image "
                         "(--runtime-image)", exit_code=ExitCode.USAGE)  # fmt: skip
    project = load_project(directory)
    secrets = _secrets(secret)
    cfg = project.config
    if runtime:
        reference = resolve_reference(cfg.image.runtime, tag, project.root) if tag else cfg.runtime_image
        request = images.runtime_request(project, reference, base_image, secrets, network, no_cache)
    else:
        for path in images.stale_generated_files(project):
            err.print(f"[yellow]warning:[/] {path} differs from what mlgit.yaml renders to; run `mlgit render`")
        reference = resolve_reference(cfg.image.repository, tag, project.root)
        request = images.model_request(project, reference, runtime_image, secrets, network, no_cache)
    client = docker_client()

    def progress(line: str) -> None:
        err.print(f"[dim]{escape(line)}[/]")

    err.print(f"building {reference}")
    image_id = build_image(client, request, progress)
    if not push:
        out.print(image_id)
        return
    err.print(f"built {image_id}; pushing {reference}")
    out.print(push_image(client, reference, progress))
