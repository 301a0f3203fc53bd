from __future__ import annotations

import os
from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg


def serve(
    directory: Path = DirArg,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on.", min=1, max=65535),
    docker: bool = typer.Option(
        False,
        "--docker",
        help="Run the built model image in the Docker engine instead, as Kubernetes will (non-root, read-only "
        "root filesystem); prints the URL once ready, Ctrl-C drains and removes it.",
    ),
    image: str | None = typer.Option(
        None, "--image", help="With --docker: the image to run (default: what `mlgit build` tags, the git SHA)."
    ),
) -> None:
    """Serve the model locally (Open Inference Protocol v2) until Ctrl-C."""
    from mlgit.config.load import load_project
    from mlgit.console import err
    from mlgit.errors import ExitCode, MlgitError

    project = load_project(directory)
    name = project.config.name
    if docker:
        from mlgit.build.engine import docker_client
        from mlgit.build.reference import resolve_reference
        from mlgit.build.run import Published, serve_container

        reference = image or resolve_reference(project.config.image.repository, None, project.root)
        err.print(f"starting {reference} on http://{host}:{port}")
        serve_container(docker_client(timeout=None), reference, project.config, Published(host, port))
        return
    if image:
        raise MlgitError("--image only applies with --docker", exit_code=ExitCode.USAGE)
    from mlgit.serve import serve_locally

    auth = "" if os.environ.get("MLGIT_SERVING_AUTH_MODE", "none") == "none" else '-H "Authorization: Bearer $KEY" '
    err.print(f"serving {name} on http://{host}:{port}  (try: curl {auth}http://{host}:{port}/v2/models/{name})")
    serve_locally(project, host, port)
