"""The merge request through python-gitlab, its HTTP calls answered by `responses` (as python-gitlab tests itself)."""

from __future__ import annotations

import json

import pytest
import responses
from responses import matchers

from mlgit.errors import MlgitError
from mlgit.promote.gitlab_api import GitLabProject, MergeRequest, ProjectRef, api_token, project_ref

API = "https://gitlab.example.com/api/v4"
MRS = f"{API}/projects/42/merge_requests"
REF = ProjectRef("https://gitlab.example.com", "42")
REQUEST = MergeRequest("mlgit/promote-staging", "main", "Promote dev to staging", "evidence", ["promotion", "ml"], [7])
OPEN_MR = {"id": 900, "iid": 3, "web_url": "https://gitlab.example.com/ml/model/-/merge_requests/3", "title": "old"}


def _project() -> GitLabProject:
    return GitLabProject(REF, "glpat-token")


@responses.activate
def test_creates_the_merge_request() -> None:
    responses.get(MRS, json=[], match=[matchers.query_param_matcher(
        {"state": "opened", "source_branch": "mlgit/promote-staging", "target_branch": "main"}, strict_match=False
    )])  # fmt: skip
    responses.post(MRS, status=201, json=OPEN_MR)
    project = _project()
    url, created = project.open_or_update(REQUEST, project.find_open("mlgit/promote-staging", "main"))
    assert (url, created) == (OPEN_MR["web_url"], True)
    sent = json.loads(responses.calls[-1].request.body)
    assert sent == {
        "source_branch": "mlgit/promote-staging",
        "target_branch": "main",
        "title": "Promote dev to staging",
        "description": "evidence",
        "labels": ["promotion", "ml"],
        "reviewer_ids": [7],
        "remove_source_branch": True,
    }
    assert responses.calls[-1].request.headers["PRIVATE-TOKEN"] == "glpat-token"


@responses.activate
def test_updates_the_open_merge_request_instead_of_opening_another() -> None:
    responses.get(MRS, json=[OPEN_MR])
    responses.put(f"{MRS}/3", json={**OPEN_MR, "title": REQUEST.title})
    project = _project()
    existing = project.find_open("mlgit/promote-staging", "main")
    assert project.open_or_update(REQUEST, existing) == (OPEN_MR["web_url"], False)
    sent = json.loads(responses.calls[-1].request.body)
    assert sent["description"] == "evidence"
    assert sent["reviewer_ids"] == [7]
    assert [c.request.method for c in responses.calls] == ["GET", "PUT"]


@responses.activate
def test_conflict_means_another_job_opened_it_first_update_that_one() -> None:
    responses.post(
        MRS, status=409, json={"message": ["Another open merge request already exists for this source branch: !3"]}
    )
    responses.get(MRS, json=[OPEN_MR])
    responses.put(f"{MRS}/3", json=OPEN_MR)
    assert _project().open_or_update(REQUEST, None) == (OPEN_MR["web_url"], False)


@responses.activate
def test_conflict_without_an_open_merge_request_is_an_error() -> None:
    responses.post(MRS, status=409, json={"message": "Conflict"})
    responses.get(MRS, json=[])
    with pytest.raises(MlgitError, match=r"refused the merge request \(409\)"):
        _project().open_or_update(REQUEST, None)


@responses.activate
def test_permission_denied() -> None:
    responses.post(MRS, status=403, json={"message": "403 Forbidden"})
    with pytest.raises(
        MlgitError, match=r"no permission to create the merge request in GitLab project 42 \(403\)"
    ) as caught:
        _project().open_or_update(REQUEST, None)
    assert "Developer" in (caught.value.hint or "")


@responses.activate
def test_bad_token_and_unknown_project() -> None:
    responses.get(MRS, status=401, json={"message": "401 Unauthorized"})
    with pytest.raises(MlgitError, match=r"rejected the token \(401\)"):
        _project().find_open("b", "main")
    responses.replace(responses.GET, MRS, status=404, json={"message": "404 Project Not Found"})
    with pytest.raises(MlgitError, match=r"project 42 not found .*\(404\)"):
        _project().find_open("b", "main")


@responses.activate
def test_reviewers_become_user_ids_and_unknown_names_are_errors() -> None:
    responses.get(
        f"{API}/users",
        json=[{"id": 7, "username": "ada"}],
        match=[matchers.query_param_matcher({"username": "ada"}, strict_match=False)],
    )
    responses.get(
        f"{API}/users", json=[], match=[matchers.query_param_matcher({"username": "nobody"}, strict_match=False)]
    )
    project = _project()
    assert project.user_ids(["ada"]) == [7]
    with pytest.raises(MlgitError, match=r"unknown GitLab user.*nobody"):
        project.user_ids(["ada", "nobody"])


def test_unreachable_gitlab() -> None:
    project = GitLabProject(ProjectRef("http://127.0.0.1:9", "42"), "t")
    with pytest.raises(MlgitError, match=r"cannot reach GitLab at http://127\.0\.0\.1:9"):
        project.find_open("b", "main")


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("git@gitlab.example.com:ml/team/model.git", ProjectRef("https://gitlab.example.com", "ml/team/model")),
        ("ssh://git@gitlab.example.com:2222/ml/model.git", ProjectRef("https://gitlab.example.com", "ml/model")),
        (
            "https://gitlab-ci-token:x@gitlab.example.com:8443/ml/model.git",
            ProjectRef("https://gitlab.example.com:8443", "ml/model"),
        ),
        ("http://gitlab.local/ml/model", ProjectRef("http://gitlab.local", "ml/model")),
    ],
)
def test_project_from_the_git_remote(remote: str, expected: ProjectRef) -> None:
    assert project_ref({}, remote) == expected


def test_project_from_ci_variables_and_tokens() -> None:
    ci = {"CI_SERVER_URL": "https://gitlab.example.com/", "CI_PROJECT_ID": "42"}
    assert project_ref(ci, "/local/path.git") == REF
    with pytest.raises(MlgitError, match="cannot tell the GitLab project"):
        project_ref({}, "/local/path.git")
    assert api_token({"GITLAB_TOKEN": "a", "MLGIT_GITLAB_TOKEN": "b"}) == "b"
    assert api_token({"CI_JOB_TOKEN": "job"}) is None


@responses.activate
def test_merge_that_gitlab_refuses_names_why() -> None:
    responses.get(MRS, json=[OPEN_MR])
    responses.put(f"{MRS}/3/merge", status=406, json={"message": "Branch cannot be merged"})
    with pytest.raises(MlgitError, match=r"GitLab did not merge !3 \(HTTP 406: Branch cannot be merged\)") as caught:
        _project().merge("mlgit/canary-staging", "main", pause_seconds=0)
    assert "merge it by hand" in (caught.value.hint or "")
    assert len([c for c in responses.calls if c.request.method == "PUT"]) == 1  # 406 is final: no retry
    responses.replace(responses.GET, MRS, json=[])
    with pytest.raises(MlgitError, match=r"no open merge request from mlgit/canary-staging into main"):
        _project().merge("mlgit/canary-staging", "main", pause_seconds=0)
