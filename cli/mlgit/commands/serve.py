from __future__ import annotations

from pathlib import Path

import typer

from mlgit.commands.validate import DirArg


def serve(
    directory: Path = DirArg,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
) -> None:
    """Serve the model locally (Open Inference Protocol v2) until Ctrl-C."""
    from mlgit.config.load import load_project
    from mlgit.console import err
    from mlgit.serve import serve_locally

    project = load_project(directory)
    name = project.config.name
    err.print(f"serving {name} on http://{host}:{port}  (try: curl http://{host}:{port}/v2/models/{name})")
    serve_locally(project, host, port)
