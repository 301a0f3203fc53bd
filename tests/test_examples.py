"""The shipped examples are exactly what `mlgit init --example NAME` produces, and they work."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.main import app
from tests.conftest import EXAMPLES, REPO_ROOT

runner = CliRunner()


def _tree(root: Path) -> dict[str, bytes]:
    skip = {"__pycache__", ".pytest_cache"}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not skip & set(p.relative_to(root).parts)
    }


def test_both_examples_ship() -> None:
    assert {"iris-classifier", "image-segmentation"} <= set(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_init_example_reproduces_the_example(example: str, example_repo: Callable[[str], Path]) -> None:
    made = example_repo(example)
    assert _tree(made) == _tree(REPO_ROOT / "examples" / example)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_validates_and_is_rendered(example: str) -> None:
    path = REPO_ROOT / "examples" / example
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    check = runner.invoke(app, ["render", str(path), "--check"])
    assert check.exit_code == 0, check.output


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_smoke_test_passes(example: str, example_repo: Callable[[str], Path]) -> None:
    repo = example_repo(example)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_overrides_name_domain_registry(example_repo: Callable[[str], Path], tmp_path: Path) -> None:
    target = tmp_path / "flowers"
    result = runner.invoke(
        app,
        ["init", str(target), "--example", "iris-classifier", "--name", "flowers", "--domain", "ml.acme.io",
         "--registry", "registry.acme.io/ml/flowers"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (target / "mlgit.yaml").read_text()
    assert "name: flowers" in text and "domain: ml.acme.io" in text
    assert "# Iris species from four flower measurements" in text, "comments must survive the edit"
    assert runner.invoke(app, ["render", str(target), "--check"]).exit_code == 0
