"""`mlgit smoke`: the pipeline's image-smoke job, the freshly built image answers its sample."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import typer

from mlgit.commands.arguments import DirArg
from mlgit.errors import ExitCode, MlgitError


def smoke(
    directory: Path = DirArg,
    url: str = typer.Option(
        ..., "--url", help="Base URL of the running model server, e.g. http://model:8080 (the job's service)."
    ),
    timeout: float = typer.Option(180.0, "--timeout", min=1, help="Seconds to wait for the model to report ready."),
) -> None:
    """Check a running model server: it reports ready and answers the sample as expected; exit 1 if not.

    The check `mlgit deploy` runs, over plain HTTP: the image-smoke job's, on the image it built (its service).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MlgitError(
            f"--url {url!r} is not an http:// or https:// URL", "e.g. --url http://model:8080", exit_code=ExitCode.USAGE
        )
    # Imported here: the cluster modules pull in the kubernetes client, which `mlgit --help` does not need.
    from mlgit.cluster.smoke import smoke_url
    from mlgit.config.load import load_project
    from mlgit.console import out

    out.print(str(smoke_url(load_project(directory), url, timeout)), markup=False)
