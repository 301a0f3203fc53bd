"""The pipeline's image-smoke job: the freshly built image becomes ready and answers its sample.

`python -m mlgit.pipelines.smoke --url http://model:8080 [DIR]` runs the same check as the
post-deploy smoke test (mlgit.cluster.smoke), against a server reached over plain HTTP: here the
image started as the job's service container. Exit 0 when it answers as expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from mlgit.cluster.smoke import smoke_check
from mlgit.config.load import load_project
from mlgit.console import out, print_error
from mlgit.errors import MlgitError


class HttpEndpoint:
    """An OIP v2 server at a URL. A refused or dropped connection reads as status 0, so the readiness
    poll keeps waiting while the service container is still starting."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None = None) -> None:
        # No proxy: the service container is on the runner's own network, never behind HTTP(S)_PROXY.
        self.client = httpx.Client(base_url=url, timeout=60, transport=transport, trust_env=False)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            response = self.client.request(method, path, json=body)
        except httpx.TransportError as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def close(self) -> None:
        self.client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlgit.pipelines.smoke", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=Path("."), help="model repository")
    parser.add_argument("--url", required=True, help="base URL of the running model server")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    endpoint = HttpEndpoint(args.url)
    try:
        out.print(str(smoke_check(endpoint, load_project(args.directory), ready_timeout=args.timeout)))
    except MlgitError as error:
        print_error(error)
        return int(error.exit_code)
    finally:
        endpoint.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
