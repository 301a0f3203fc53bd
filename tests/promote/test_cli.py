"""`mlgit promote` end to end against a local bare origin (and `responses` for GitLab's API): exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from typer.testing import CliRunner

from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app
from tests.promote.support import DIGEST_A, IMAGE_A, IMAGE_B, PROTECTED, Remote, git

PIN = "deploy/overlays/staging/image/kustomization.yaml"
BRANCH = "mlgit/promote-staging"
API = "https://gitlab.example.com/api/v4"
MRS = f"{API}/projects/42/merge_requests"
OPEN_MR = {"id": 900, "iid": 3, "web_url": "https://gitlab.example.com/ml/model/-/merge_requests/3"}


def promote(remote: Remote, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["promote", *args, str(remote.repo)])
    return result.exit_code, result.stdout, result.stderr


def merge(remote: Remote, branch: str) -> None:
    """What pressing Merge does with a fast-forward merge: main becomes the promotion commit."""
    git("fetch", "-q", "origin", branch, cwd=remote.repo)
    git("merge", "-q", "--ff-only", "FETCH_HEAD", cwd=remote.repo)
    remote.push()


def test_promotes_through_push_options_then_onwards_from_the_pin(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGIT_IMAGE", IMAGE_A)
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token")
    monkeypatch.setenv("CI_PIPELINE_URL", "https://gitlab.example.com/ml/model/-/pipelines/77")
    monkeypatch.setenv("MLGIT_SMOKE_LATENCY_MS", "12.5")
    built_from = git("rev-parse", "HEAD", cwd=remote.repo)
    code, out, err = promote(remote, "--from", "dev", "--to", "staging")
    assert code == 0, err
    assert "CI_JOB_TOKEN cannot create merge requests" in err
    assert f"pushed {BRANCH}" in out
    assert "12.5 ms for the sample request on dev" in out
    assert remote.pushes()[-1] == [
        "merge_request.create",
        "merge_request.target=main",
        "merge_request.title=Promote dev to staging: sha256:aaaaaaaaaaaa",
        "merge_request.label=promotion",
        "merge_request.remove_source_branch",
    ]
    assert f"digest: {DIGEST_A}" in remote.show(BRANCH, PIN)
    assert git("diff", "--name-only", "main", BRANCH, cwd=remote.origin) == PIN
    message = git("log", "-1", "--format=%B", BRANCH, cwd=remote.origin)
    assert f"Mlgit-Source-Commit: {built_from}" in message

    # Merged; a later pipeline promotes staging's pin to prod. The model sha256 comes from the commit the
    # image was built from (the trailer), although main moved on since.
    merge(remote, BRANCH)
    (remote.repo / "README.md").write_text("newer work\n", encoding="utf-8")
    remote.commit("newer work")
    remote.push()
    monkeypatch.delenv("MLGIT_IMAGE")
    code, out, err = promote(remote, "--from", "staging", "--to", "prod", "--dry-run")
    assert code == 0, err
    assert f"| built from commit | - | `{built_from[:12]}` |" in out
    assert "Image source: the pin of staging in git." in out


def test_nothing_to_promote_exits_0(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGIT_IMAGE", IMAGE_A)
    assert promote(remote, "--from", "dev", "--to", "staging")[0] == 0
    merge(remote, BRANCH)
    pushes = len(remote.pushes())
    code, out, _ = promote(remote, "--from", "dev", "--to", "staging")
    assert code == 0
    assert f"nothing to promote: staging already runs {IMAGE_A}" in out
    assert len(remote.pushes()) == pushes


def test_dry_run_prints_the_merge_request_and_changes_nothing(remote: Remote) -> None:
    before = git("status", "--porcelain", cwd=remote.repo)
    code, out, err = promote(remote, "--from", "dev", "--to", "staging", "--image", IMAGE_A, "--dry-run")
    assert code == 0, err
    assert f"Would open a merge request from {BRANCH} into main" in out
    assert "title: Promote dev to staging: sha256:aaaaaaaaaaaa" in out
    assert f"+    digest: {DIGEST_A}" in out
    assert "<details><summary>Rendered manifests of <code>staging</code>: diff</summary>" in out
    assert f"+        image: {IMAGE_A}" in out
    assert remote.branch(BRANCH) is None
    assert len(remote.pushes()) == 1  # the fixture's own push
    assert git("status", "--porcelain", cwd=remote.repo) == before


def _with_reviewers(remote: Remote) -> None:
    path = remote.repo / "mlgit.yaml"
    doc = read_yaml(path)
    doc["promotion"] = {"reviewers": ["ada"], "labels": ["promotion", "model"]}
    path.write_text(dump_yaml(doc), encoding="utf-8")
    remote.commit("reviewers")
    remote.push()


@responses.activate
def test_with_a_token_opens_then_updates_the_merge_request(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_reviewers(remote)
    monkeypatch.setenv("MLGIT_GITLAB_TOKEN", "glpat-secret")
    monkeypatch.setenv("CI_SERVER_URL", "https://gitlab.example.com")
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    responses.get(f"{API}/users", json=[{"id": 7, "username": "ada"}])
    responses.get(MRS, json=[])
    responses.post(MRS, status=201, json=OPEN_MR)
    code, out, err = promote(remote, "--from", "dev", "--to", "staging", "--image", IMAGE_A)
    assert code == 0, err
    assert f"created merge request {OPEN_MR['web_url']}" in out
    sent = json.loads(responses.calls[-1].request.body)
    assert (sent["source_branch"], sent["target_branch"], sent["reviewer_ids"]) == (BRANCH, "main", [7])
    assert sent["labels"] == ["promotion", "model"]
    assert "| model sha256 | - | `" in sent["description"]
    assert "```diff" in sent["description"]
    assert remote.pushes()[-1] == []  # the API opens it: a plain push
    first = remote.branch(BRANCH)

    responses.replace(responses.GET, MRS, json=[OPEN_MR])
    responses.put(f"{MRS}/3", json=OPEN_MR)
    code, out, err = promote(remote, "--from", "dev", "--to", "staging", "--image", IMAGE_B)
    assert code == 0, err
    assert f"updated merge request {OPEN_MR['web_url']}" in out
    assert responses.calls[-1].request.method == "PUT"
    assert IMAGE_B in json.loads(responses.calls[-1].request.body)["description"]
    assert remote.branch(BRANCH) != first  # force-pushed: still one commit on top of main
    assert git("rev-list", "--count", f"main..{BRANCH}", cwd=remote.origin) == "1"


@responses.activate
def test_permission_denied_exits_1(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-secret")
    monkeypatch.setenv("CI_SERVER_URL", "https://gitlab.example.com")
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    responses.get(MRS, json=[])
    responses.post(MRS, status=403, json={"message": "403 Forbidden"})
    code, _, err = promote(remote, "--from", "dev", "--to", "staging", "--image", IMAGE_A)
    assert code == 1
    assert "no permission to create the merge request" in err
    assert "glpat-secret" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "dev", "--to", "prod"], "staging comes in between"),
        (["--from", "staging", "--to", "dev"], "promotion goes dev -> staging -> prod"),
        (["--from", "dev", "--to", "qa"], "unknown environment 'qa'"),
        (["--from", "dev", "--to", "staging"], "dev has no pinned image"),
        (["--from", "dev", "--to", "staging", "--image", "registry.example.com/ml/linear:1"], "pinned by digest"),
    ],
)
def test_user_errors_exit_1(remote: Remote, args: list[str], message: str) -> None:
    code, _, err = promote(remote, *args)
    assert code == 1
    assert message in " ".join(err.split())


def test_protected_branch_exits_1(remote: Remote) -> None:
    remote.hook(PROTECTED)
    code, _, err = promote(remote, "--from", "dev", "--to", "staging", "--image", IMAGE_A)
    assert code == 1
    assert "remote rejected the push of mlgit/promote-staging" in " ".join(err.split())


def test_no_token_and_no_push_options_exits_1(model_repo: Path, tmp_path: Path) -> None:
    remote = Remote(model_repo, tmp_path / "plain.git", push_options=False)
    code, _, err = promote(remote, "--from", "dev", "--to", "staging", "--image", IMAGE_A)
    assert code == 1
    assert "does not accept push options" in " ".join(err.split())


def test_policy_violation_exits_3(remote: Remote) -> None:
    code, _, err = promote(remote, "--from", "dev", "--to", "staging", "--image", "evil.example.org/x@" + DIGEST_A)
    assert code == 3
    assert "MLGIT-IMG-003" in err
    assert remote.branch(BRANCH) is None


def manifests_diff(remote: Remote, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["manifests", "diff", *args, str(remote.repo)])
    return result.exit_code, result.stdout, result.stderr


def test_manifest_diff_of_the_merge_request_pipeline(remote: Remote) -> None:
    from mlgit.manifests.pins import write_pin

    base = git("rev-parse", "HEAD", cwd=remote.repo)
    assert manifests_diff(remote, "--env", "staging", "--base", base)[:2] == (
        0, "the rendered manifests of staging do not change\n"
    )  # fmt: skip
    write_pin(remote.repo, "staging", IMAGE_A)
    output = remote.repo.parent / "staging.diff"
    code, out, err = manifests_diff(remote, "--env", "staging", "--base", base, "--output", str(output))
    assert code == 0, err
    assert f"+        image: {IMAGE_A}" in out
    assert output.read_text(encoding="utf-8") == out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--env", "qa", "--base", "HEAD"], 1, "unknown environment 'qa'"),
        (["--env", "staging", "--base", "no-such-commit"], 1, "could not find the base commit 'no-such-commit'"),
        (["--env", "staging", "--base", ""], 1, "could not find the base commit ''"),
        (["--env", "staging"], 2, "Missing option '--base'"),
    ],
)
def test_manifest_diff_errors(remote: Remote, args: list[str], code: int, message: str) -> None:
    result = manifests_diff(remote, *args)
    assert result[0] == code
    assert message in " ".join(result[2].split()) and "Traceback" not in result[2]


def test_manifest_diff_output_creates_its_folder(remote: Remote) -> None:
    output = remote.repo.parent / "reports" / "new" / "staging.diff"
    code, _, err = manifests_diff(remote, "--env", "staging", "--base", "HEAD", "--output", str(output))
    assert code == 0, err
    assert output.read_text(encoding="utf-8") == ""


@pytest.mark.parametrize("where", ["a-folder", "a-file/staging.diff"])
def test_manifest_diff_output_that_cannot_be_written_exits_1_naming_it(remote: Remote, where: str) -> None:
    (remote.repo.parent / "a-folder").mkdir()
    (remote.repo.parent / "a-file").write_text("", encoding="utf-8")
    output = remote.repo.parent / where
    code, _, err = manifests_diff(remote, "--env", "staging", "--base", "HEAD", "--output", str(output))
    assert code == 1
    assert f"cannot write {output}" in " ".join(err.split()) and "Traceback" not in err


def test_a_bad_pin_file_at_the_base_is_named_at_that_commit(remote: Remote) -> None:
    good = (remote.repo / PIN).read_text(encoding="utf-8")
    (remote.repo / PIN).write_text("images: [[[\n", encoding="utf-8")
    bad = remote.commit("a broken pin")
    (remote.repo / PIN).write_text(good, encoding="utf-8")
    remote.commit("the pin restored")
    code, _, err = manifests_diff(remote, "--env", "staging", "--base", bad)
    assert code == 1
    text = " ".join(err.split())
    assert f"{PIN} at {bad}, line 2: YAML syntax error" in text, err
    assert "mlgit-pin-" not in text and "Traceback" not in text


def test_in_ci_the_push_uses_the_api_token_not_the_job_token() -> None:
    from mlgit.promote.run import _remote

    ci = {"CI_REPOSITORY_URL": "https://gitlab-ci-token:job@gitlab.example.com/ml/model.git"}
    assert _remote(ci, "glpat") == "https://oauth2:glpat@gitlab.example.com/ml/model.git"
    assert _remote(ci, None) == "origin"
    assert _remote({}, "glpat") == "origin"


def test_a_broken_pin_file_on_the_default_branch_is_named_there(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pin is read from the default branch through a temporary copy: the error names the branch's file."""
    good = (remote.repo / PIN).read_text(encoding="utf-8")
    (remote.repo / PIN).write_text("images: [[[\n", encoding="utf-8")
    remote.commit("a broken pin")
    remote.push()
    (remote.repo / PIN).write_text(good, encoding="utf-8")  # the checkout is fine: only the branch is broken
    monkeypatch.setenv("MLGIT_IMAGE", IMAGE_A)
    monkeypatch.setenv("CI_DEFAULT_BRANCH", "main")
    code, _, err = promote(remote, "--from", "dev", "--to", "staging")
    assert code == 1
    message = " ".join(err.split())
    assert f"{PIN} on main, line " in message and "mlgit-pin-" not in message
