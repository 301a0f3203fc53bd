"""Commands find mlgit.yaml in a parent folder as git finds .git, and stop at the git repository's top."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.load import find_root
from mlgit.errors import MlgitError
from mlgit.main import app

runner = CliRunner()


@pytest.mark.parametrize("command", [["validate"], ["render", "--check"]])
def test_commands_work_from_a_subdirectory(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(model_repo / "deploy" / "overlays" / "dev")
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output


def test_an_explicit_directory_is_searched_upward_too(model_repo: Path) -> None:
    result = runner.invoke(app, ["validate", str(model_repo / "model")])
    assert result.exit_code == 0, result.output
    assert f"{model_repo / 'mlgit.yaml'}" in result.stdout


def test_the_search_stops_at_the_top_of_a_git_repository(model_repo: Path) -> None:
    # A git repository inside the model repository (a submodule, a vendored project) is another project:
    # its mlgit.yaml is not the one above it.
    inner = model_repo / "vendor" / "other"
    (inner / "src").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(inner)], check=True)
    result = runner.invoke(app, ["validate", str(inner / "src")])
    assert result.exit_code == 1
    assert f"mlgit.yaml not found in {inner / 'src'} or its parent folders" in result.output
    assert f"up to the git repository's top {inner}" in result.output and "mlgit init" in result.output


def test_the_git_top_itself_is_searched(model_repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(model_repo)], check=True)
    assert find_root(model_repo / "deploy" / "base") == model_repo


def test_a_file_or_missing_folder_is_named(model_repo: Path) -> None:
    with pytest.raises(MlgitError, match="is not a directory"):
        find_root(model_repo / "mlgit.yaml")
    with pytest.raises(MlgitError, match="not found"):
        find_root(model_repo / "no-such-folder")
