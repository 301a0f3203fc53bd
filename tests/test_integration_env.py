"""The real components that tests/run.sh sets up work together, as the rest of the suite expects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.fixtures_integration import registry_manifest_digest

pytestmark = pytest.mark.integration


def run(argv: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert result.returncode == 0, f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}"
    return result


def test_docker_build_push_pull_run(docker_cli: str, local_registry: str, base_image: str, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN python3 -c 'print(42)' > /answer.txt\n", encoding="utf-8"
    )
    repository = f"{local_registry}/mlgit-test/env-check"
    tag = f"{repository}:{uuid.uuid4().hex[:12]}"
    buildkit = {**os.environ, "DOCKER_BUILDKIT": "1"}
    run([docker_cli, "build", "--network", "host", "-q", "-t", tag, str(tmp_path)], env=buildkit)
    try:
        run([docker_cli, "push", "-q", tag])
        digests = json.loads(run([docker_cli, "image", "inspect", "-f", "{{json .RepoDigests}}", tag]).stdout)
        pushed = next(d for d in digests if d.startswith(f"{repository}@sha256:"))
        assert (
            registry_manifest_digest(local_registry, "mlgit-test/env-check", tag.rsplit(":", 1)[1])
            == (pushed.split("@", 1)[1])
        )
    finally:
        run([docker_cli, "rmi", tag])  # so that the pull below really comes from the registry

    run([docker_cli, "pull", "-q", pushed])
    try:
        answer = run([docker_cli, "run", "--rm", "--network", "none", pushed, "python3", "-c", "print(42)"])
        assert answer.stdout.strip() == "42"
        built = run([docker_cli, "run", "--rm", "--network", "none", pushed, "cat", "/answer.txt"])
        assert built.stdout.strip() == "42"
    finally:
        run([docker_cli, "rmi", pushed])


def test_docker_sdk_sees_the_base_image(docker_client, base_image: str):
    image = docker_client.images.get(base_image)
    assert "PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin" in image.attrs["Config"]["Env"]


def test_registry_holds_the_base_image_for_buildah(registry_base_image: str, local_registry: str):
    assert registry_base_image.startswith(f"{local_registry}/")


def test_buildah_builds_from_the_registry_and_pushes(
    buildah: str, local_registry: str, registry_base_image: str, tmp_path: Path
):
    (tmp_path / "Containerfile").write_text(
        f"FROM {registry_base_image}\nHEALTHCHECK CMD python3 -c 'print(42)'\n", encoding="utf-8"
    )
    tag = uuid.uuid4().hex[:12]
    image = f"{local_registry}/mlgit-test/buildah-check:{tag}"
    run(
        [
            buildah,
            "bud",
            "--network",
            "host",
            "--format",
            "docker",
            "--layers",
            "--tls-verify=false",
            "-q",
            "-t",
            image,
            str(tmp_path),
        ]
    )
    try:
        run([buildah, "push", "--tls-verify=false", "-q", image])
    finally:
        run([buildah, "rmi", image])
    digest = registry_manifest_digest(local_registry, "mlgit-test/buildah-check", tag)
    assert digest is not None and digest.startswith("sha256:")


def test_gitlab_ci_local_runs(gitlab_ci_local: str):
    version = run([gitlab_ci_local, "--version"], timeout=60).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version


def test_kubectl_kustomize_renders_offline(kubectl: str, tmp_path: Path):
    (tmp_path / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: env-check\ndata:\n  answer: '42'\n",
        encoding="utf-8",
    )
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: mlgit-test\n"
        "resources:\n  - configmap.yaml\nlabels:\n  - pairs:\n      app.kubernetes.io/part-of: mlgit\n",
        encoding="utf-8",
    )
    result = run([kubectl, "kustomize", str(tmp_path)], timeout=60)
    assert result.stderr == ""  # no deprecation warnings
    assert "namespace: mlgit-test" in result.stdout
    assert "app.kubernetes.io/part-of: mlgit" in result.stdout
    assert 'answer: "42"' in result.stdout
