"""What the commands print for a person at a terminal: a pasteable next step, progress while waiting."""

from __future__ import annotations

import io
import shlex
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mlgit.main import app

runner = CliRunner()


@pytest.mark.parametrize("name", ["My Model Repo", "it's [here]", "a&b;c"])
def test_init_prints_a_shell_quoted_next_step(tmp_path: Path, linear_onnx: Path, name: str) -> None:
    target = tmp_path / name
    result = runner.invoke(app, ["init", str(target), "--model", str(linear_onnx), "--name", "linear"])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("next: ")]
    lexer = shlex.shlex(line.removeprefix("next: "), posix=True, punctuation_chars=True)  # `;` `&` split as sh does
    lexer.whitespace_split = True
    assert list(lexer)[:3] == ["cd", str(target), "&&"], line


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
@pytest.mark.parametrize("terminal", [True, False])
def test_policy_check_shows_progress_on_a_terminal_only(
    model_repo: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr("mlgit.console.err", Console(file=screen, force_terminal=terminal, width=200))
    result = runner.invoke(app, ["policy", "check", str(model_repo), "--format", "json"])
    assert result.exit_code in (0, 3), result.output
    shown = "building and checking dev, staging, prod, review, pipeline" in screen.getvalue()
    assert shown is terminal, screen.getvalue()
    assert result.stdout.lstrip().startswith("{"), "the report on stdout is untouched"
