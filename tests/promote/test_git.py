"""The git side against local bare repositories: the one-file commit, push options, rejected pushes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlgit.errors import MlgitError
from mlgit.promote.git import Git
from tests.promote.support import PROTECTED, Remote, git

PIN = "deploy/overlays/staging/image/kustomization.yaml"


def _git(remote: Remote, **environ: str) -> Git:
    return Git(remote.repo, "origin", {**os.environ, **environ}, secrets=["s3cret"])


def test_promotion_commit_changes_one_file_and_touches_nothing_checked_out(remote: Remote) -> None:
    (remote.repo / "README.md").write_text("local edit, not committed\n", encoding="utf-8")
    g = _git(remote)
    assert g.default_branch() == "main"
    base = g.fetch("main")
    commit = g.commit_file(base, PIN, b"images: []\n", "Promote\n\nMlgit-Source-Commit: abc\n")
    assert g.changed_files(base, commit) == [PIN]
    assert g.trailer(commit, "Mlgit-Source-Commit") == "abc"
    assert git("status", "--porcelain", cwd=remote.repo) == "M README.md"
    assert git("rev-parse", "HEAD", cwd=remote.repo) == base
    g.push(commit, "mlgit/promote-staging", ["merge_request.create", "merge_request.title=Promote"])
    assert remote.branch("mlgit/promote-staging") == commit
    assert remote.pushes()[-1] == ["merge_request.create", "merge_request.title=Promote"]
    # A second promotion replaces the branch (force push): it belongs to mlgit.
    again = g.commit_file(base, PIN, b"images: [1]\n", "Promote again\n")
    g.push(again, "mlgit/promote-staging")
    assert remote.branch("mlgit/promote-staging") == again


def test_a_project_in_a_subfolder_names_paths_from_the_repository_top(tmp_path: Path) -> None:
    top = tmp_path / "mono"
    (top / "models" / "m").mkdir(parents=True)
    (top / "models" / "m" / "f.txt").write_text("x\n", encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=top)
    git("add", "-A", cwd=top)
    git("commit", "-qm", "one", cwd=top)
    g = Git(top / "models" / "m", "origin", os.environ)
    assert g.repo_path("f.txt") == "models/m/f.txt"
    assert g.show("HEAD", "f.txt") == b"x\n"
    assert g.show("HEAD", "missing.txt") is None
    assert g.last_change("HEAD", "f.txt") == git("rev-parse", "HEAD", cwd=top)


def test_authored_by_the_gitlab_user_who_pressed_the_button(remote: Remote) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    g = Git(remote.repo, "origin", {**environ, "GITLAB_USER_NAME": "Ada", "GITLAB_USER_EMAIL": "ada@example.com"})
    base = g.fetch("main")
    commit = g.commit_file(base, PIN, b"x\n", "Promote\n")
    assert git("log", "-1", "--format=%an <%ae> / %cn", commit, cwd=remote.repo) == "Ada <ada@example.com> / Ada"


def test_protected_branch_rejection_is_explained(remote: Remote) -> None:
    g = _git(remote)
    base = g.fetch("main")
    commit = g.commit_file(base, PIN, b"x\n", "Promote\n")
    remote.hook(PROTECTED)
    with pytest.raises(MlgitError, match="rejected the push of mlgit/promote-staging") as caught:
        g.push(commit, "mlgit/promote-staging", ["merge_request.create"])
    assert "protected branches" in caught.value.message
    assert "must not be protected" in (caught.value.hint or "")


def test_a_remote_without_push_options_needs_a_token(model_repo: Path, tmp_path: Path) -> None:
    remote = Remote(model_repo, tmp_path / "plain.git", push_options=False)
    g = _git(remote)
    commit = g.commit_file(g.fetch("main"), PIN, b"x\n", "Promote\n")
    with pytest.raises(MlgitError, match="does not accept push options") as caught:
        g.push(commit, "mlgit/promote-staging", ["merge_request.create"])
    assert "MLGIT_GITLAB_TOKEN" in (caught.value.hint or "")
    assert remote.branch("mlgit/promote-staging") is None


def test_errors_never_show_the_token(remote: Remote, tmp_path: Path) -> None:
    for url in ("https://oauth2:s3cret@127.0.0.1:9/ml/model.git", str(tmp_path / "s3cret.git")):
        g = Git(remote.repo, url, os.environ, secrets=["s3cret"])
        with pytest.raises(MlgitError, match="could not fetch main") as caught:
            g.fetch("main")
        assert "s3cret" not in str(caught.value)
    assert "[MASKED].git" in str(caught.value)
