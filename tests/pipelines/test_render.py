"""The generated .gitlab-ci.yml and the shipped component: GitLab's schema, golden files, and the rules
GitLab enforces that neither check-jsonschema nor gitlab-ci-local looks at."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlgit.pipelines.render import component_path, component_text
from tests.conftest import EXAMPLES, REPO_ROOT
from tests.golden import GoldenFiles
from tests.pipelines.conftest import CASES
from tests.pipelines.support import VARIANTS, check_jsonschema, configure, jobs, load_pipeline, split_component

Repo = Callable[[str], Path]
# GitLab's duration syntax for auto_stop_in (ChronicDuration): "3 days", "1 week 2 hours", "never".
DURATION = re.compile(r"^(never|(\d+\s*(seconds?|minutes?|hours?|days?|weeks?|months?|years?)\s*)+)$")
DEFAULT_BRANCH_RULE = "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"


def test_every_pipeline_matches_gitlabs_schema(pipeline_repo: Repo, tmp_path: Path) -> None:
    _, body = split_component(component_path().read_text(encoding="utf-8"))
    (tmp_path / "model-pipeline.body.yml").write_text(body, encoding="utf-8")
    files = [pipeline_repo(case) / ".gitlab-ci.yml" for case in CASES]
    result = check_jsonschema(*files, tmp_path / "model-pipeline.body.yml", REPO_ROOT / ".gitlab-ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, pipeline_repo: Repo, golden: GoldenFiles) -> None:
    text = (pipeline_repo(case) / ".gitlab-ci.yml").read_text(encoding="utf-8")
    example = case.removesuffix("-inline")
    if example in EXAMPLES:  # the shipped example's pipeline (inline) is this case's golden file
        golden.check_file(REPO_ROOT / "examples" / example / ".gitlab-ci.yml", text)
    else:
        golden.check(f"pipelines/{case}", {".gitlab-ci.yml": text})


def test_shipped_component_is_rendered_from_the_job_templates(request: pytest.FixtureRequest) -> None:
    path = component_path()
    if request.config.getoption("--update-golden"):
        path.write_text(component_text(), encoding="utf-8")
    assert path.read_text(encoding="utf-8") == component_text(), f"{path} is stale: pytest --update-golden"


@pytest.mark.parametrize("variant", ["default", "custom"])
def test_component_mode_is_the_inline_pipeline(variant: str, pipeline_repo: Repo, tmp_path: Path) -> None:
    """One source of jobs: the component plus the thin file make exactly the inline pipeline."""
    inline = load_pipeline(pipeline_repo(f"linear-{variant}"))
    repo = tmp_path / "repo"
    shutil.copytree(pipeline_repo(f"linear-{variant}"), repo)
    pipeline_cfg = {**VARIANTS[variant].get("pipeline", {}), "mode": "component"}
    component = load_pipeline(configure(repo, {"pipeline": pipeline_cfg}))
    assert component == inline


# --- what GitLab enforces and the local tools ignore ----------------------------------------------


def _expression(condition: str, variables: dict[str, str]) -> bool:
    """Evaluate a GitLab rules:if of the forms the pipeline uses ($VAR, "text", ==, !=, &&, ||)."""
    tokens = re.findall(r'\$\w+|"[^"]*"|==|!=|&&|\|\||\(|\)', condition)
    assert "".join(tokens) == re.sub(r"\s+", "", condition), f"unsupported expression: {condition}"
    python = []
    for token in tokens:
        if token.startswith("$"):
            python.append(repr(variables.get(token[1:]) or None))
        else:
            python.append({"&&": " and ", "||": " or "}.get(token, token.replace('"', "'")))
    return bool(eval("".join(python)))  # only tokens matched above reach eval


def _workflow_runs(pipeline: dict[str, Any], variables: dict[str, str]) -> bool:
    for rule in pipeline["workflow"]["rules"]:
        if "if" not in rule or _expression(rule["if"], variables):
            return rule.get("when", "always") != "never"
    return False


@pytest.mark.parametrize("case", CASES)
def test_workflow_makes_one_pipeline_per_push(case: str, pipeline_repo: Repo) -> None:
    pipeline = load_pipeline(pipeline_repo(case))
    branch = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature/x", "CI_DEFAULT_BRANCH": "trunk"}
    assert _workflow_runs(pipeline, branch)
    assert not _workflow_runs(pipeline, {**branch, "CI_OPEN_MERGE_REQUESTS": "group/model!1"})
    merge_request = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "1"}
    assert _workflow_runs(pipeline, merge_request)
    assert _workflow_runs(pipeline, {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.0.0"})
    assert not _workflow_runs(pipeline, {"CI_PIPELINE_SOURCE": "push"})


@pytest.mark.parametrize("case", CASES)
def test_every_on_stop_names_a_matching_stop_job(case: str, pipeline_repo: Repo) -> None:
    all_jobs = jobs(load_pipeline(pipeline_repo(case)))
    starters = {n: j for n, j in all_jobs.items() if "on_stop" in j.get("environment", {})}
    assert starters, "no environment has a stop job"
    for name, job in starters.items():
        stop_name = job["environment"]["on_stop"]
        assert stop_name in all_jobs, f"{name}: on_stop names a missing job {stop_name}"
        stop = all_jobs[stop_name]
        assert stop["environment"] == {"name": job["environment"]["name"], "action": "stop"}, stop_name
        # The stop job must exist in every pipeline the deploy job does: same conditions.
        strip = [{k: v for k, v in rule.items() if k not in ("when", "allow_failure")} for rule in job["rules"]]
        assert strip == [{k: v for k, v in r.items() if k not in ("when", "allow_failure")} for r in stop["rules"]]
        assert stop["rules"][-1]["when"] == "manual"
        assert stop.get("stage") == job.get("stage"), f"{stop_name} runs in another stage than {name}"
    stoppers = {n for n, j in all_jobs.items() if j.get("environment", {}).get("action") == "stop"}
    assert stoppers == {j["environment"]["on_stop"] for j in starters.values()}, "a stop job no deploy job uses"


@pytest.mark.parametrize("case", CASES)
def test_environment_keywords(case: str, pipeline_repo: Repo) -> None:
    all_jobs = jobs(load_pipeline(pipeline_repo(case)))
    groups: dict[str, set[str]] = {}
    for name, job in all_jobs.items():
        env = job.get("environment")
        if env is None:
            continue
        assert "resource_group" in job, f"{name}: deployments to {env['name']} may overlap"
        groups.setdefault(env["name"], set()).add(job["resource_group"])
        if "auto_stop_in" in env:
            assert DURATION.match(env["auto_stop_in"]), f"{name}: auto_stop_in {env['auto_stop_in']!r}"
        if env.get("action") != "stop":
            assert job["interruptible"] is False, f"{name}: a cancelled deployment leaves a half-applied release"
            assert all(rule["if"].startswith(("$CI_PIPELINE_SOURCE", DEFAULT_BRANCH_RULE)) for rule in job["rules"])
            if env.get("deployment_tier") == "production":  # no variant sets `deploy: auto` on production
                assert {rule["when"] for rule in job["rules"]} == {"manual"}, f"{name} deploys production by itself"
    assert all(len(g) == 1 for g in groups.values()), f"one resource_group per environment: {groups}"
    assert len({next(iter(g)) for g in groups.values()}) == len(groups), "environments share a resource_group"


@pytest.mark.parametrize("case", CASES)
def test_gitlab_template_conventions(case: str, pipeline_repo: Repo) -> None:
    text = (pipeline_repo(case) / ".gitlab-ci.yml").read_text(encoding="utf-8")
    pipeline = load_pipeline(pipeline_repo(case))
    for body in (text, component_path().read_text(encoding="utf-8")):
        assert not re.search(r"\b(main|master)\b", body), "hard-coded branch name: use $CI_DEFAULT_BRANCH"
    all_jobs = jobs(pipeline)
    names = set(all_jobs)
    for name, job in all_jobs.items():
        assert not {"only", "except"} & job.keys(), f"{name}: use rules:"
        assert job["image"] in ("$MLGIT_CLI_IMAGE", "$BUILDAH_IMAGE"), f"{name}: images are pinned in variables"
        for need in job.get("needs", []):
            needed = need["job"] if isinstance(need, dict) else need
            assert needed in names, f"{name} needs a missing job {needed}"
        if job["stage"] in ("test", "build"):
            assert job["interruptible"] is True, f"{name}: a newer push should cancel it"
    assert set(pipeline["variables"]) >= {"MLGIT_CLI_IMAGE", "BUILDAH_IMAGE"}
    assert re.fullmatch(r"\S+:\S+", pipeline["variables"]["MLGIT_CLI_IMAGE"])
    assert re.fullmatch(r"\S+:v?\d+\.\d+\.\d+\S*", pipeline["variables"]["BUILDAH_IMAGE"])
