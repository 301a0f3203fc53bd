"""Which reference a build gets: --tag, full references, the git SHA default, and refused tags."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlgit.build.reference import registry_of, resolve_reference, split_reference
from mlgit.errors import MlgitError

REPO = "registry.example.com/team/model"


def _git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    return subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_tag_and_full_reference() -> None:
    assert resolve_reference(REPO, "1.2.0", Path(".")) == f"{REPO}:1.2.0"
    assert resolve_reference(REPO, "127.0.0.1:5000/x/y:abc", Path(".")) == "127.0.0.1:5000/x/y:abc"


@pytest.mark.parametrize("tag", ["latest", "127.0.0.1:5000/x/y:latest"])
def test_latest_is_refused(tag: str) -> None:
    with pytest.raises(MlgitError, match="refusing the tag 'latest'"):
        resolve_reference(REPO, tag, Path("."))


@pytest.mark.parametrize("tag", ["-bad", "a" * 129, "sp ace"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(MlgitError, match="not a valid image tag"):
        resolve_reference(REPO, tag, Path("."))


def test_default_tag_is_the_short_sha_and_dirty_when_tracked_files_changed(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "mlgit.yaml").write_text("name: x\n", encoding="utf-8")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    sha = _git(tmp_path, "rev-parse", "--short=8", "HEAD")
    (tmp_path / "untracked.txt").write_text("", encoding="utf-8")
    assert resolve_reference(REPO, None, tmp_path) == f"{REPO}:{sha}"
    (tmp_path / "mlgit.yaml").write_text("name: y\n", encoding="utf-8")
    assert resolve_reference(REPO, None, tmp_path) == f"{REPO}:{sha}-dirty"


def test_no_git_no_tag_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(MlgitError, match="not a git repository") as caught:
        resolve_reference(REPO, None, tmp_path)
    assert "--tag" in (caught.value.hint or "") and "--image" in (caught.value.hint or "")


def test_split_and_registry() -> None:
    assert split_reference("host:5000/a/b:t") == ("host:5000/a/b", "t")
    with pytest.raises(MlgitError, match="has no tag"):
        split_reference("host:5000/a/b")
    assert registry_of("127.0.0.1:5000/a") == "127.0.0.1:5000"
    assert registry_of("registry.gitlab.com/g/p") == "registry.gitlab.com"
    assert registry_of("localhost/a") == "localhost"
    assert registry_of("library/python") == "docker.io"
    assert registry_of("python") == "docker.io"
