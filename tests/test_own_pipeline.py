"""The toolkit's own .gitlab-ci.yml: the jobs that run tests have the tools those tests need."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

PIPELINE = REPO_ROOT / ".gitlab-ci.yml"


def job(name: str, pipeline: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job with its `extends` chain merged in (top-level keys: enough for before_script and script)."""
    pipeline = pipeline or yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))
    parents = pipeline[name].get("extends", [])
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        merged.update(job(parent, pipeline))
    merged.update(pipeline[name])
    return merged


def commands(name: str) -> list[str]:
    """before_script then script, in the order GitLab runs them."""
    spec = job(name)
    return [*spec.get("before_script", []), *spec.get("script", [])]


def test_the_pipeline_matches_gitlabs_schema() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")  # the test extra's, next to this python
    if not checker.exists():
        checker = Path(shutil.which("check-jsonschema") or "check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", str(PIPELINE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["unit", "integration"])
def test_test_jobs_install_kubectl_before_the_tests(name: str) -> None:
    """55 manifests/policy/deploy tests run `kubectl kustomize`: a job without kubectl fails them all."""
    lines = commands(name)
    run = next(i for i, line in enumerate(lines) if "tests/run.sh" in line)
    assert [line for line in lines[:run] if "kubectl" in line and "$KUBECTL_VERSION" in line], (
        f"{name} never downloads kubectl $KUBECTL_VERSION before tests/run.sh: {lines}"
    )
    assert yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))["variables"]["KUBECTL_VERSION"].startswith("v1.")


def test_the_unit_job_verifies_kubectl_before_the_tests() -> None:
    """A checksum, then a run: a broken download fails the job at once, not as 55 test failures."""
    lines = commands("unit")
    run = next(i for i, line in enumerate(lines) if "tests/run.sh" in line)
    download = next(i for i, line in enumerate(lines) if "$KUBECTL_VERSION" in line)
    checksum = next(i for i, line in enumerate(lines) if ".sha256" in line and "sha256sum -c" in line)
    version = next(i for i, line in enumerate(lines) if "kubectl version --client" in line)
    assert download < checksum < version < run, lines


def test_the_integration_job_builds_the_control_plane_and_runs_the_cluster_tests() -> None:
    """tests/run.sh builds the Kubernetes control plane from source: Go must be there, and the cluster group
    must be selected (the kind cluster in a docker:dind service it replaced is gone)."""
    lines = commands("integration")
    run = next(i for i, line in enumerate(lines) if "tests/run.sh" in line)
    assert [line for line in lines[:run] if "$GO_VERSION" in line and "go.dev/dl" in line], lines
    assert "cluster" in lines[run] and "integration" in lines[run]
    pipeline = yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))
    assert not [
        name for name, spec in pipeline.items() if isinstance(spec, dict) and "kind " in str(spec.get("script"))
    ]
    assert {"MLGIT_CONTROL_PLANE_CACHE", "MLGIT_CRDS_CACHE", "MLGIT_GO_TOOLS_CACHE"} <= set(
        job("integration")["variables"]
    )
