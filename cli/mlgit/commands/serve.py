from __future__ import annotations

import os
from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg


def _workers(value: str | None) -> int | str | None:
    """--workers: a process count, or auto (as serving.workers in mlgit.yaml)."""
    from mlgit.config.serving import MAX_WORKERS

    if value is None or value == "auto":
        return value
    if value.isdigit() and 1 <= int(value) <= MAX_WORKERS:
        return int(value)
    raise typer.BadParameter(
        f"{value!r} is not a number of processes: give a whole number >= 1 (at most {MAX_WORKERS}), or auto"
    )


def serve(
    directory: Path = DirArg,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on.", min=1, max=65535),
    grpc_port: int | None = typer.Option(
        None,
        "--grpc-port",
        help="Serve the Open Inference Protocol over gRPC too, on this port; 0: no gRPC. Default: serving.grpc_port "
        "of mlgit.yaml, else $MLGIT_SERVING_GRPC_PORT.",
        min=0,
        max=65535,
    ),
    workers: str | None = typer.Option(
        None,
        "--workers",
        help="Server processes, each with its own copy of the model: a number, or auto (one per CPU this process "
        "may use). Default: serving.workers of mlgit.yaml, else $MLGIT_SERVING_WORKERS, else the runtime's.",
        callback=_workers,
    ),
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
        if grpc_port is not None or workers is not None:
            raise MlgitError(
                "--grpc-port and --workers apply to the in-process server only, not with --docker",
                "the container takes serving.grpc_port and serving.workers from mlgit.yaml as the pods do",
                exit_code=ExitCode.USAGE,
            )
        from mlgit.build.engine import docker_client
        from mlgit.build.reference import resolve_reference
        from mlgit.build.run import Published, serve_container

        reference = image or resolve_reference(project.config.image.repository, None, project.root)
        err.print(f"starting {reference} on http://{host}:{port}")
        serve_container(docker_client(timeout=None), reference, project.config, Published(host, port))
        return
    if image:
        raise MlgitError("--image only applies with --docker", exit_code=ExitCode.USAGE)
    # Flag > mlgit.yaml > MLGIT_SERVING_* (which the runtime reads itself when neither gives a value).
    serving = project.config.serving
    grpc = grpc_port if grpc_port is not None else serving.grpc_port
    if grpc and grpc == port:
        raise MlgitError(
            f"the gRPC port {grpc} is also the HTTP port (--port)",
            "give --grpc-port another port",
            exit_code=ExitCode.USAGE,
        )
    from mlgit.serve import serve_locally

    auth = "" if os.environ.get("MLGIT_SERVING_AUTH_MODE", "none") == "none" else '-H "Authorization: Bearer $KEY" '
    err.print(f"serving {name} on http://{host}:{port}  (try: curl {auth}http://{host}:{port}/v2/models/{name})")
    if grpc:
        err.print(f"gRPC (inference.GRPCInferenceService) on {host}:{grpc}")
    serve_locally(project, host, port, grpc_port=grpc, workers=workers if workers is not None else serving.workers)
