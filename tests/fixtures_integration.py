"""Session fixtures for the real components that tests/run.sh installs and starts.

Loaded as a pytest plugin from tests/conftest.py (``pytest_plugins = ["tests.fixtures_integration"]``).
Each fixture checks cheaply, once per session, that its component answers. When one does not, the
test is skipped with the reason, except under CI (``CI`` set, as GitLab and .ci/run do), where
integration tests must run for real and the test fails instead.

Where things are comes from the environment that tests/run.sh exports, with the same defaults:

==================================  ===========================================================
MLGIT_TEST_REGISTRY                 local registry, host:port (plain HTTP), 127.0.0.1:5000
MLGIT_TEST_BASE_IMAGE               base image in dockerd, local/python:3.11-slim
MLGIT_TEST_REGISTRY_BASE_IMAGE      the same base in the registry, for buildah
MLGIT_TEST_DOCKER_CLI               docker client to shell out to, /usr/bin/docker
MLGIT_TEST_KUBECTL                  kubectl, /usr/bin/kubectl
MLGIT_GITLAB_CI_LOCAL               gitlab-ci-local, <repo>/.cache/node/node_modules/.bin/...
==================================  ===========================================================
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SETUP_HINT = "run `bash tests/run.sh` to install and start it"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def in_ci() -> bool:
    """True where integration tests must run for real (CI=true, as in GitLab CI and .ci/run)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test outside CI; fail it in CI, where every component must be there."""
    message = f"{reason} ({SETUP_HINT})"
    if in_ci():
        pytest.fail(f"integration component missing under CI: {message}", pytrace=False)
    pytest.skip(message)


def _executable(env_var: str, default: str | Path | None, name: str) -> str | None:
    """The path named by env_var, else the default if it exists, else `name` on PATH."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if default is not None and os.access(default, os.X_OK):
        return str(default)
    return shutil.which(name)


def _run_quietly(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def registry_manifest_digest(registry: str, repository: str, reference: str) -> str | None:
    """The digest the registry serves for repository:reference (a tag or digest), None if absent."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    try:
        with _no_proxy_opener().open(request, timeout=5) as response:
            return response.headers.get("Docker-Content-Digest")
    except (urllib.error.URLError, OSError):
        return None


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A docker SDK client for the local engine (DOCKER_HOST or /var/run/docker.sock)."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        unavailable(f"the docker SDK is not installed: {exc}")
    try:
        # from_env already asks the engine for its API version; a short timeout so that a hung
        # engine does not stall the session, then a long one for builds that stream slowly.
        docker.from_env(timeout=10).close()
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        unavailable(f"no docker engine answers: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_cli(docker_client: Any) -> str:
    """Path of the docker client to shell out to (Debian's: BuildKit builds work without buildx)."""
    path = _executable("MLGIT_TEST_DOCKER_CLI", "/usr/bin/docker", "docker")
    if path is None:
        unavailable("no docker client found (MLGIT_TEST_DOCKER_CLI, /usr/bin/docker)")
    return path


@pytest.fixture(scope="session")
def local_registry() -> str:
    """host:port of a local registry that answers /v2/ over plain HTTP."""
    registry = os.environ.get("MLGIT_TEST_REGISTRY", "127.0.0.1:5000")
    try:
        with _no_proxy_opener().open(f"http://{registry}/v2/", timeout=5) as response:
            if response.status != 200:
                unavailable(f"registry {registry} answered /v2/ with HTTP {response.status}")
    except (urllib.error.URLError, OSError) as exc:
        unavailable(f"no registry answers on {registry}: {exc}")
    return registry


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """Name of the local Python base image in dockerd (tests build FROM it; nothing can be pulled)."""
    import docker.errors

    name = os.environ.get("MLGIT_TEST_BASE_IMAGE", "local/python:3.11-slim")
    try:
        docker_client.images.get(name)
    except docker.errors.ImageNotFound:
        unavailable(f"base image {name} is not in the docker engine")
    return name


@pytest.fixture(scope="session")
def registry_base_image(local_registry: str) -> str:
    """The base image as a registry reference, for builders that cannot see dockerd (buildah)."""
    name = os.environ.get("MLGIT_TEST_REGISTRY_BASE_IMAGE", f"{local_registry}/local/python:3.11-slim")
    host, _, path = name.partition("/")
    repository, _, tag = path.rpartition(":")
    if registry_manifest_digest(host, repository, tag) is None:
        unavailable(f"base image {name} is not in the registry")
    return name


@pytest.fixture(scope="session")
def gitlab_ci_local() -> str:
    """Path of a gitlab-ci-local that runs."""
    default = REPO_ROOT / ".cache/node/node_modules/.bin/gitlab-ci-local"
    path = _executable("MLGIT_GITLAB_CI_LOCAL", default, "gitlab-ci-local")
    if path is None:
        unavailable("gitlab-ci-local not found (MLGIT_GITLAB_CI_LOCAL)")
    result = _run_quietly([path, "--version"], timeout=60)
    if result is None or result.returncode != 0:
        unavailable(f"{path} --version does not run: {result.stderr if result else 'timed out'}")
    return path


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of the real kubectl (kustomize renders offline; there is no API server here)."""
    path = _executable("MLGIT_TEST_KUBECTL", "/usr/bin/kubectl", "kubectl")
    if path is None:
        unavailable("kubectl not found (MLGIT_TEST_KUBECTL, /usr/bin/kubectl)")
    result = _run_quietly([path, "version", "--client"], timeout=30)
    if result is None or result.returncode != 0:
        unavailable(f"{path} version --client does not run")
    return path


@pytest.fixture(scope="session")
def buildah() -> str:
    """Path of buildah (daemonless builds; takes its base image from the registry)."""
    path = _executable("MLGIT_TEST_BUILDAH", "/usr/bin/buildah", "buildah")
    if path is None:
        unavailable("buildah not found")
    result = _run_quietly([path, "--version"], timeout=30)
    if result is None or result.returncode != 0:
        unavailable(f"{path} --version does not run")
    return path
