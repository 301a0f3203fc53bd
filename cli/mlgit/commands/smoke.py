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
        ...,
        "--url",
        help="Base URL of the running model server, e.g. http://model:8080 (the job's service). https:// is "
        "verified against the CA list mlgit installs (certifi's); there is no option for another CA.",
    ),
    timeout: float = typer.Option(
        180.0, "--timeout", min=1, help="Seconds the check may take: the model reports ready and answers the sample."
    ),
) -> None:
    """Check a running model server: it reports ready and answers the sample as expected; exit 1 if not.

    The check `mlgit deploy` runs, sent over HTTP or HTTPS: the image-smoke job's, on the image it built (its service).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MlgitError(
            f"--url {url!r} is not an http:// or https:// URL", "e.g. --url http://model:8080", exit_code=ExitCode.USAGE
        )
    # Imported here: loading the project pulls in pydantic and onnx, which `mlgit --help` does not need.
    from mlgit.config.load import load_project
    from mlgit.console import out
    from mlgit.smoke import smoke_url

    out.print(str(smoke_url(load_project(directory), url, timeout)), markup=False)
