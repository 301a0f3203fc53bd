"""Finding the Docker engine (through the SDK) and a docker CLI that builds with BuildKit."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Any

from mlgit.errors import MlgitError

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Debian's docker.io client (20.10) does BuildKit builds by itself; clients from 23.0 on hand `docker build`
# to the buildx plugin and fail without it, so each candidate is asked rather than trusted.
CLI_CANDIDATES = ("docker", "/usr/bin/docker")


def docker_client(timeout: float | None = 600) -> Any:
    """A docker SDK client whose engine answers, or an MlgitError saying how to get one.

    `timeout` bounds each API call; None lets a call such as waiting for a container block indefinitely.
    """
    import docker
    import docker.errors

    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise MlgitError(
            f"no Docker engine answers at {host} (DOCKER_HOST): {_first_line(exc)}",
            "start one (`dockerd &` as root, `sudo systemctl start docker`, or Docker Desktop), "
            "or point DOCKER_HOST at a running engine, e.g. DOCKER_HOST=tcp://docker:2375 in GitLab CI",
        ) from None
    return client


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@functools.cache
def buildkit_cli() -> str | None:
    """Path of a docker CLI that runs BuildKit builds, or None (then the SDK's legacy builder is used).

    MLGIT_DOCKER_CLI names one explicitly; DOCKER_BUILDKIT=0 turns BuildKit off, as it does for docker.
    """
    if os.environ.get("DOCKER_BUILDKIT", "").strip() == "0":
        return None
    explicit = os.environ.get("MLGIT_DOCKER_CLI")
    candidates = [explicit] if explicit else [shutil.which(c) for c in CLI_CANDIDATES]
    for path in dict.fromkeys(c for c in candidates if c):
        if _does_buildkit(path):
            return path
    return None


def _does_buildkit(cli: str) -> bool:
    # Without an engine `docker version` exits 1 but still prints the client's version.
    version = _output([cli, "version", "--format", "{{.Client.Version}}"], any_status=True)
    if version is None:
        return False
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        return False
    return major < 23 or _output([cli, "buildx", "version"]) is not None


def _output(argv: list[str], any_status: bool = False) -> str | None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = result.stdout.strip()
    return out if out and (any_status or result.returncode == 0) else None
