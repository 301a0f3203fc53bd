"""The batch-<env> buttons: one per environment whose batch data mlgit.yaml places, on the default branch only,
through gitlab-ci-local; the golden .gitlab-ci.yml; none at all without `batch.storage`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import GoldenFiles
from tests.pipelines.support import DEFAULT_BRANCH, Pipeline, configure, load_pipeline

# Top-level storage (S3) for every environment; prod gets its own PVC instead.
BATCH = {
    "batch": {
        "storage": {"s3": {"endpoint": "https://s3.example.com", "secret": "s3-creds"}},
        "environments": {"prod": {"storage": {"pvc": {"claim": "scans"}}}},
    }
}
BUTTONS = {"batch-dev": "manual", "batch-staging": "manual", "batch-prod": "manual"}


@pytest.fixture
def batch_repo(model_repo: Path) -> Path:
    return configure(model_repo, BATCH)


def test_golden(batch_repo: Path, golden: GoldenFiles) -> None:
    golden.check("pipelines/linear-batch", {".gitlab-ci.yml": (batch_repo / ".gitlab-ci.yml").read_text()})


def test_no_storage_no_button(model_repo: Path) -> None:
    assert not [job for job in load_pipeline(configure(model_repo, {})) if job.startswith("batch-")]


@pytest.mark.integration
def test_buttons_exist_on_the_default_branch_only(batch_repo: Path, gitlab_ci_local: str, tmp_path: Path) -> None:
    work = tmp_path / "pipeline"
    work.mkdir()
    pipeline = Pipeline(batch_repo, work, gitlab_ci_local)
    pipeline.commit_change("README.md")
    on_default = pipeline.listed()
    assert {k: v for k, v in on_default.items() if k.startswith("batch-")} == BUTTONS
    pipeline.git("checkout", "-q", "-b", "feature/x")
    assert not [job for job in pipeline.listed() if job.startswith("batch-")]
    assert not [
        job for job in pipeline.listed(["CI_COMMIT_TAG=1.0.0"], ["CI_COMMIT_BRANCH"]) if job.startswith("batch-")
    ]
    jobs = pipeline.preview()
    for env in ("dev", "staging", "prod"):
        job = jobs[f"batch-{env}"]
        # `access`: a batch run is no deployment, so GitLab's environment history keeps showing the deploys.
        assert job["environment"] == {"name": env, "action": "access"}
        assert any(
            f"mlgit batch submit --env {env}" in line
            and '--input "$MLGIT_BATCH_INPUT" --output "$MLGIT_BATCH_OUTPUT" --wait' in line
            for line in job["script"]
        ), job["script"]
    # dev deploys the image this pipeline built, so its batch runs that image; the others their pin.
    assert [n["job"] for n in jobs["batch-dev"]["needs"]] == ["build-image"] and '--image "$MLGIT_IMAGE"' in jobs[
        "batch-dev"
    ]["script"][0]
    assert jobs["batch-prod"]["needs"] == [] and "--image" not in jobs["batch-prod"]["script"][0]
    assert DEFAULT_BRANCH != "main"
