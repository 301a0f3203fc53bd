"""Image references: which tag a build gets, and splitting `registry/path:tag` into its parts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mlgit.errors import MlgitError

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SHORT_SHA_LENGTH = 8  # as GitLab's CI_COMMIT_SHORT_SHA


def split_reference(reference: str) -> tuple[str, str]:
    """`host:5000/a/b:tag` -> (`host:5000/a/b`, `tag`); a reference without a tag is an error."""
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:
        raise MlgitError(f"image reference {reference!r} has no tag", "write it as REPOSITORY:TAG")
    return repository, tag


def registry_of(repository: str) -> str:
    """The registry host of a repository, as Docker reads it (no dot, colon or localhost: Docker Hub)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def git_tag(root: Path) -> str:
    """The short SHA of the commit checked out at `root`, with -dirty when tracked files changed."""
    try:
        sha = _git(root, "rev-parse", f"--short={SHORT_SHA_LENGTH}", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        raise MlgitError(
            f"{root} is not a git repository with a commit, so the image has no default tag",
            "commit first (images are tagged with the short commit SHA), or name the image: "
            "`mlgit build --tag 1.0.0`, `mlgit serve --docker --image REF`",
        ) from None
    return f"{sha}-dirty" if dirty else sha


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30)
    return result.stdout.strip()


def resolve_reference(repository: str, tag: str | None, root: Path) -> str:
    """The reference to build: `--tag` as a full reference, or `repository:TAG`, or `repository:<git sha>`."""
    if tag and "/" in tag:
        repository, tag = split_reference(tag)
    tag = tag or git_tag(root)
    if not _TAG.match(tag):
        raise MlgitError(f"{tag!r} is not a valid image tag", "use letters, digits, '_', '.' and '-' (at most 128)")
    if tag == "latest":
        raise MlgitError(
            "refusing the tag 'latest': it moves, so a deployment could not say which model it runs",
            "use a version (--tag 1.2.0) or leave --tag out for the short git SHA",
        )
    return f"{repository}:{tag}"
