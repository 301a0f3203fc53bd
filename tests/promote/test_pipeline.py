"""The promotion flow through gitlab-ci-local: the promote job opens the MR against a local bare origin, the
MR pipeline diffs the target's manifests, and once merged the default branch offers exactly that deploy."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from mlgit import render
from mlgit.config.load import load_project
from tests.promote.support import DIGEST_A, IMAGE_A, Remote, git

pytestmark = pytest.mark.integration

BRANCH = "mlgit/promote-staging"
ALWAYS = ("validate", "render-check", "model-test", "policy-check", "build-image", "image-smoke")


class Ci:
    def __init__(self, remote: Remote, binary: str) -> None:
        self.remote, self.binary = remote, binary
        # gitlab-ci-local derives the project (CI_PROJECT_PATH, CI_SERVER_URL) from this remote.
        git("remote", "add", "gcl-origin", "git@gitlab.example.com:ml/model.git", cwd=remote.repo)

    def run(self, *args: str, variables: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> str:
        argv = [self.binary, "--json-schema-validation=false", *args]
        for name, value in (variables or {}).items():
            argv += ["--variable", f"{name}={value}"]
        for name in unset:
            argv += ["--unset-variable", name]
        if variables:
            argv += ["--ignore-predefined-vars", ",".join(variables)]
        result = subprocess.run(argv, cwd=self.remote.repo, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        return result.stdout

    def jobs(self, **kwargs: object) -> dict[str, str]:
        out = self.run("--list-json", **kwargs)  # type: ignore[arg-type]
        listed = json.loads(out[re.search(r"^\[", out, re.M).start() :])
        return {j["name"]: j["when"] for j in listed if j["when"] != "never" and j["name"] not in ALWAYS}


def test_promotion_flow(model_repo: Path, tmp_path: Path, gitlab_ci_local: str) -> None:
    render.render(load_project(model_repo))
    remote = Remote(model_repo, tmp_path / "origin.git")
    ci = Ci(remote, gitlab_ci_local)
    base = git("rev-parse", "HEAD", cwd=remote.repo)
    manual = {"deploy-dev": "manual", "destroy-dev": "manual"}
    assert ci.jobs() == manual | {"promote-to-staging": "manual"}

    # The promote job, as the pipeline runs it (MLGIT_IMAGE comes from build-image's dotenv report).
    out = ci.run("--force-shell-executor", "promote-to-staging", variables={"MLGIT_IMAGE": IMAGE_A})
    assert f"pushed {BRANCH}" in out
    assert remote.pushes()[-1][:2] == ["merge_request.create", "merge_request.target=main"]
    assert (
        git("diff", "--name-only", base, BRANCH, cwd=remote.origin)
        == "deploy/overlays/staging/image/kustomization.yaml"
    )

    # The promotion MR's pipeline: a manifest diff of staging, no deploys of the default branch.
    git("fetch", "-q", "origin", BRANCH, cwd=remote.repo)
    git("checkout", "-q", "-b", BRANCH, "FETCH_HEAD", cwd=remote.repo)
    mr = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
          "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": BRANCH, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}  # fmt: skip
    assert ci.jobs(variables=mr, unset=("CI_COMMIT_BRANCH",)) == {
        "review": "on_success", "stop-review": "manual", "promotion-diff-staging": "on_success"
    }  # fmt: skip
    out = ci.run("--force-shell-executor", "promotion-diff-staging", variables=mr, unset=("CI_COMMIT_BRANCH",))
    assert f"+        image: {IMAGE_A}" in out
    assert "-        image: registry.example.com/ml/linear:unpinned" in out

    # Merged (fast-forward): main's pipeline offers the deploy of staging, and the next promotion.
    git("checkout", "-q", "main", cwd=remote.repo)
    git("merge", "-q", "--ff-only", BRANCH, cwd=remote.repo)
    git("update-ref", "refs/remotes/origin/main", base, cwd=remote.repo)
    assert f"digest: {DIGEST_A}" in (model_repo / "deploy/overlays/staging/image/kustomization.yaml").read_text()
    assert ci.jobs() == manual | {
        "promote-to-staging": "manual", "deploy-staging": "manual", "destroy-staging": "manual",
        "promote-to-prod": "manual",
    }  # fmt: skip
