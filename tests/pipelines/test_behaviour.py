"""Which jobs each push makes, run through gitlab-ci-local: feature branch, merge request, default
branch, tag, and a promotion merged for a later environment. The default branch is called `trunk`
here, so a hard-coded `main` anywhere would show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.pipelines.support import DEFAULT_BRANCH, Pipeline

pytestmark = pytest.mark.integration

Repo = Callable[[str], Path]
MR_VARIABLES = [
    "CI_PIPELINE_SOURCE=merge_request_event",
    "CI_MERGE_REQUEST_IID=7",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME=feature/x",
    f"CI_MERGE_REQUEST_TARGET_BRANCH_NAME={DEFAULT_BRANCH}",
]
TEST_AND_BUILD = {j: "on_success" for j in ("validate", "render-check", "model-test", "policy-check")} | {
    "build-image": "on_success",
    "image-smoke": "on_success",
}
MANUAL, AUTO = "manual", "on_success"


def _pair(env: str, deploy: str) -> dict[str, str]:
    return {f"deploy-{env}": deploy, f"destroy-{env}": MANUAL}


# variant -> situation -> the jobs the pipeline has and their `when`. The promote-to-<next> jobs
# (jobs/promote.yml.j2, the promotion issue) follow the rules of the deploy job they promote from.

EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "default": {
        "feature branch": TEST_AND_BUILD,
        "merge request": TEST_AND_BUILD | {"review": AUTO, "stop-review": MANUAL},
        "promotion merge request": TEST_AND_BUILD
        | {"review": AUTO, "stop-review": MANUAL, "promotion-diff-staging": AUTO},
        "default branch": TEST_AND_BUILD | _pair("dev", MANUAL) | {"promote-to-staging": MANUAL},
        "tag": TEST_AND_BUILD,
        "promoted to staging": TEST_AND_BUILD
        | _pair("dev", MANUAL)
        | _pair("staging", MANUAL)
        | {"promote-to-staging": MANUAL, "promote-to-prod": MANUAL},
        "promoted to prod": TEST_AND_BUILD
        | _pair("dev", MANUAL)
        | _pair("prod", MANUAL)
        | {"promote-to-staging": MANUAL},
    },
    # dev deploys itself; promotions deploy on merge (auto_deploy) except to production; review is a button
    "custom": {
        "feature branch": TEST_AND_BUILD,
        "merge request": TEST_AND_BUILD | {"review": MANUAL, "stop-review": MANUAL},
        "promotion merge request": TEST_AND_BUILD
        | {"review": MANUAL, "stop-review": MANUAL, "promotion-diff-qa": AUTO},
        "default branch": TEST_AND_BUILD | _pair("dev", AUTO) | {"promote-to-qa": MANUAL},
        "tag": TEST_AND_BUILD,
        "promoted to qa": TEST_AND_BUILD
        | _pair("dev", AUTO)
        | _pair("qa", AUTO)
        | {"promote-to-qa": MANUAL, "promote-to-prod": MANUAL},
        "promoted to prod": TEST_AND_BUILD | _pair("dev", AUTO) | _pair("prod", MANUAL) | {"promote-to-qa": MANUAL},
    },
}
# analyze-<env> follows each deploy of an environment with a canary: a window later, or as a button.
EXPECTED["canary"] = {
    **{situation: EXPECTED["default"][situation] for situation in ("feature branch", "merge request", "tag")},
    "promotion merge request": TEST_AND_BUILD | {"review": AUTO, "stop-review": MANUAL, "promotion-diff-staging": AUTO},
    "default branch": TEST_AND_BUILD | _pair("dev", MANUAL) | {"promote-to-staging": MANUAL},
    "promoted to staging": TEST_AND_BUILD
    | _pair("dev", MANUAL)
    | _pair("staging", AUTO)
    | {"promote-to-staging": MANUAL, "promote-to-prod": MANUAL, "analyze-staging": "delayed"},
    "promoted to prod": TEST_AND_BUILD
    | _pair("dev", MANUAL)
    | _pair("prod", MANUAL)
    | {"promote-to-staging": MANUAL, "analyze-prod": MANUAL},
}
EXPECTED["component"] = EXPECTED["default"]
# The same flow, with each prod instance's own deploy and destroy jobs where prod's pair was.
EXPECTED["instances"] = {
    situation: {job: when for job, when in jobs.items() if job not in _pair("prod", MANUAL)}
    | (_pair("prod-eu", MANUAL) | _pair("prod-us", MANUAL) if "deploy-prod" in jobs else {})
    for situation, jobs in EXPECTED["default"].items()
}


def _situations(pipeline: Pipeline, later: list[str]) -> dict[str, dict[str, str]]:
    seen = {}
    pipeline.git("checkout", "-q", "-b", "feature/x")
    seen["feature branch"] = pipeline.listed()
    seen["merge request"] = pipeline.listed(MR_VARIABLES, ["CI_COMMIT_BRANCH"])
    pipeline.commit_change(f"deploy/overlays/{later[0]}/image/kustomization.yaml")
    seen["promotion merge request"] = pipeline.listed(MR_VARIABLES, ["CI_COMMIT_BRANCH"])
    pipeline.git("checkout", "-q", DEFAULT_BRANCH)
    pipeline.commit_change("README.md")
    seen["default branch"] = pipeline.listed()
    seen["tag"] = pipeline.listed(["CI_COMMIT_TAG=1.0.0"], ["CI_COMMIT_BRANCH"])
    for env in later:
        pipeline.commit_change(f"deploy/overlays/{env}/image/kustomization.yaml")
        seen[f"promoted to {env}"] = pipeline.listed()
    return seen


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_jobs_per_situation(variant: str, pipeline_repo: Repo, gitlab_ci_local: str, tmp_path: Path) -> None:
    pipeline = Pipeline(pipeline_repo(f"linear-{variant}"), tmp_path, gitlab_ci_local)
    later = [s.removeprefix("promoted to ") for s in EXPECTED[variant] if s.startswith("promoted to ")]
    seen = _situations(pipeline, later)
    assert seen == EXPECTED[variant]
    defined = pipeline.preview()
    for situation, listed in seen.items():
        for name in listed:
            environment = defined[name].get("environment")
            if name.startswith(("deploy-", "destroy-")):
                # deploy-prod-eu deploys the GitLab environment prod/eu: an instance of prod.
                assert environment["name"].replace("/", "-") == name.split("-", 1)[1], name
            if environment and "on_stop" in environment:
                stop = environment["on_stop"]
                assert stop in listed, f"{situation}: {name} stops with {stop}, which this pipeline lacks"
                assert defined[stop]["environment"] == {"name": environment["name"], "action": "stop"}
    assert defined["review"]["environment"]["name"] == "review/$CI_COMMIT_REF_SLUG"


def test_test_stage_jobs_run_in_the_shell(pipeline_repo: Repo, gitlab_ci_local: str, tmp_path: Path) -> None:
    """The test jobs' scripts work on the generated repository (the CLI image is this machine here)."""
    pipeline = Pipeline(pipeline_repo("linear-default"), tmp_path, gitlab_ci_local)
    result = pipeline.run("--force-shell-executor", "validate", "render-check", "model-test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


def test_analysis_fails_on_a_failed_canary_and_passes_on_too_little_traffic(
    pipeline_repo: Repo, gitlab_ci_local: str, tmp_path: Path
) -> None:
    """analyze-<env> fails on exit 4 (the canary failed) and is allowed to fail on exit 5 (inconclusive), as a
    delayed job (staging) and as a button (prod): no rule-level allow_failure may replace the exit codes."""
    pipeline = Pipeline(pipeline_repo("linear-canary"), tmp_path, gitlab_ci_local)
    for env, when in (("staging", "delayed"), ("prod", MANUAL)):
        pipeline.commit_change(f"deploy/overlays/{env}/image/kustomization.yaml")
        job = {job["name"]: job for job in pipeline.list_json()}[f"analyze-{env}"]
        assert (job["when"], job["allow_failure"]) == (when, {"exit_codes": [5]}), env
