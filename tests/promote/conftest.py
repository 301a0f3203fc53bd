"""Fixtures of the promotion tests: a clean environment, and a model repository with a local origin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.promote.support import IDENTITY, Remote


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI_*, GITLAB_* or MLGIT_* variable of the machine running the tests leaks into a promotion."""
    for name in list(os.environ):
        if name.startswith(("CI_", "GITLAB_", "MLGIT_GITLAB", "MLGIT_IMAGE", "MLGIT_SMOKE")) or name == "GIT_DIR":
            monkeypatch.delenv(name)
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def remote(model_repo: Path, tmp_path: Path) -> Remote:
    """The `model_repo` fixture as a git checkout of a bare origin that accepts push options."""
    return Remote(model_repo, tmp_path / "origin.git")
