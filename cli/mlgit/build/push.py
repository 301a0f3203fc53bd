"""Pushing an image to its registry, with credentials from the environment or the docker config.

Precedence: MLGIT_REGISTRY_USER/PASSWORD (any registry) > GitLab CI's CI_REGISTRY_USER/PASSWORD (only
for CI_REGISTRY itself) > the docker config (~/.docker/config.json, credential helpers included).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from mlgit.build.builder import Progress
from mlgit.build.reference import registry_of, split_reference
from mlgit.errors import MlgitError

_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def registry_credentials(registry: str) -> dict[str, str] | None:
    """Credentials for `registry` from the environment; None leaves it to the docker config."""
    user, password = os.environ.get("MLGIT_REGISTRY_USER"), os.environ.get("MLGIT_REGISTRY_PASSWORD")
    if user and password:
        return {"username": user, "password": password}
    ci_registry = os.environ.get("CI_REGISTRY")
    user, password = os.environ.get("CI_REGISTRY_USER"), os.environ.get("CI_REGISTRY_PASSWORD")
    if ci_registry == registry and user and password:
        return {"username": user, "password": password}
    return None


def push_image(client: Any, reference: str, progress: Progress) -> str:
    """Push `reference` and return `repository@sha256:...`, the digest the registry stored."""
    import docker.errors

    repository, tag = split_reference(reference)
    registry = registry_of(repository)
    try:
        stream = client.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=registry_credentials(registry)
        )
        digest = pushed_digest(stream, progress)
    except docker.errors.APIError as exc:
        raise push_failure(reference, registry, str(exc.explanation or exc)) from None
    except MlgitError as exc:
        raise push_failure(reference, registry, exc.message) from None
    return f"{repository}@{digest}"


def pushed_digest(stream: Iterable[dict[str, Any]], progress: Progress) -> str:
    """The manifest digest from the engine's push stream; an MlgitError carrying the registry's refusal."""
    digest = None
    for chunk in stream:
        if "error" in chunk:
            raise MlgitError(chunk.get("errorDetail", {}).get("message") or chunk["error"])
        digest = chunk.get("aux", {}).get("Digest") or digest
        status = chunk.get("status", "")
        if match := _DIGEST.search(status):
            digest = digest or match.group(1)
        if status and not chunk.get("progressDetail"):  # byte counters would flood the terminal
            progress(" ".join(p for p in (chunk.get("id", ""), status) if p))
    if digest is None:
        raise MlgitError("the engine reported no digest for the pushed image")
    return digest


def push_failure(reference: str, registry: str, detail: str) -> MlgitError:
    """The registry's refusal, with what to do about the usual causes."""
    lowered = detail.lower()
    if any(w in lowered for w in ("unauthorized", "authentication required", "denied", "forbidden", "401", "403")):
        hint = (
            f"log in to {registry}: set MLGIT_REGISTRY_USER and MLGIT_REGISTRY_PASSWORD (in GitLab CI, "
            "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD are used for CI_REGISTRY), or `docker login "
            f"{registry}`; check that the account may push to this repository"
        )
    elif any(w in lowered for w in ("connection refused", "no such host", "timeout", "dial tcp", "unreachable")):
        hint = f"the Docker engine cannot reach {registry}: check image.repository in mlgit.yaml and the network"
    else:
        hint = "check image.repository in mlgit.yaml and that the registry accepts this image"
    return MlgitError(f"the registry refused the push of {reference}: {detail.strip()}", hint)
