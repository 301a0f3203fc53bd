"""Session fixtures for real image builds (a pytest plugin, tests/conftest.py, so that the cluster tests' end
to end build can use them too): each runtime image is built once per session (BuildKit's cache
makes a rebuild with nothing changed take seconds), the iris model image once, pushed to the local registry."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgit import __version__

# Behind the re-signing proxy pip must trust the host's CAs; passed as a BuildKit secret, so no CA lands
# in an image. On a machine without a proxy it is just the system bundle.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RUNTIME_REPOSITORY = "mlgit-test/serving-runtime"


def mlgit(
    *args: str | Path, timeout: float = 1200, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `mlgit` command line; stdout and stderr apart, as a script would see them."""
    return subprocess.run(
        [sys.executable, "-m", "mlgit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def mlgit_ok(*args: str | Path, timeout: float = 1200, env: dict[str, str] | None = None) -> str:
    """stdout of a successful `mlgit` run (a failure fails the test, showing both streams)."""
    result = mlgit(*args, timeout=timeout, env=env)
    command = " ".join(map(str, args))
    assert result.returncode == 0, f"mlgit {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`mlgit init --example NAME` into a fresh directory (a new one on each call)."""

    def make(name: str) -> Path:
        target = tmp_path_factory.mktemp("repo") / name
        mlgit_ok("init", "--example", name, target)
        return target

    return make


def _runtime_image(example: Callable[[str], Path], name: str, device: str, base_image: str) -> str:
    reference = f"{RUNTIME_REPOSITORY}:{__version__}-{device}"
    mlgit_ok(
        "build", example(name), "--runtime", "--base-image", base_image, "--tag", reference,
        "--secret", f"id=ca,src={CA_BUNDLE}", "--network", "host",
    )  # fmt: skip
    return reference


@pytest.fixture(scope="session")
def cpu_runtime_image(docker_client: Any, base_image: str, example: Callable[[str], Path]) -> str:
    """The CPU serving runtime built from serving_runtime/Dockerfile on the local base (in dockerd only)."""
    return _runtime_image(example, "iris-classifier", "cpu", base_image)


@pytest.fixture(scope="session")
def gpu_runtime_image(docker_client: Any, base_image: str, example: Callable[[str], Path]) -> str:
    """The GPU variant (onnxruntime-gpu) on the same base: it builds and imports here, CUDA cannot run."""
    return _runtime_image(example, "image-segmentation", "gpu", base_image)


@pytest.fixture(scope="session")
def iris_repo(example: Callable[[str], Path]) -> Path:
    """The iris example, shared by the tests that only read it."""
    return example("iris-classifier")


@pytest.fixture(scope="session")
def iris_image(docker_client: Any, cpu_runtime_image: str, local_registry: str, iris_repo: Path) -> Iterator[str]:
    """The iris model image built FROM the CPU runtime and pushed: its `repository@sha256:...`."""
    reference = f"{local_registry}/mlgit-test/iris-classifier:{uuid.uuid4().hex[:12]}"
    stdout = mlgit_ok("build", iris_repo, "--runtime-image", cpu_runtime_image, "--tag", reference, "--push")
    yield stdout.strip()
    import docker.errors

    for image in (reference, stdout.strip()):
        with contextlib.suppress(docker.errors.ImageNotFound):  # a test removes it to pull it back
            docker_client.images.remove(image, force=True)
