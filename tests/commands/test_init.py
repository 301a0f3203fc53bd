"""`mlgit init`: happy paths and its failures (never a half-written repository)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.main import app
from tests.onnx_models import (
    FUTURE_OPSET,
    write_custom_op_model,
    write_external_data_model,
    write_linear_model,
    write_shapeless_model,
)

runner = CliRunner()


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_init_from_model_gives_a_repo_that_validates_and_renders_clean(tmp_path: Path, linear_onnx: Path) -> None:
    target = tmp_path / "my-model"
    result = runner.invoke(app, ["init", str(target), "--model", str(linear_onnx)])
    assert result.exit_code == 0, result.output
    files = _files(target)
    assert {"mlgit.yaml", "model/model.onnx", "model/sample.json", "Dockerfile", "model-settings.json",
            ".gitignore", "README.md", "tests/test_model.py"} <= files  # fmt: skip
    assert "name: my-model" in (target / "mlgit.yaml").read_text()
    assert runner.invoke(app, ["validate", str(target)]).exit_code == 0
    check = runner.invoke(app, ["render", str(target), "--check"])
    assert check.exit_code == 0, check.output
    # leftovers of the temporary build directory must not remain beside the target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linear.onnx", "my-model"]


def test_rendering_an_unchanged_repo_changes_no_byte(model_repo: Path) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in model_repo.rglob("*") if p.is_file()}
    result = runner.invoke(app, ["render", str(model_repo)])
    assert result.exit_code == 0 and "up to date" in result.output
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in model_repo.rglob("*") if p.is_file()}
    assert before == after


def test_generated_smoke_test_passes(model_repo: Path) -> None:
    result = subprocess.run(
        ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(model_repo / "tests")],
        capture_output=True, text=True, cwd=model_repo, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_refuses_a_non_empty_directory(tmp_path: Path, linear_onnx: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(target), "--model", str(linear_onnx)])
    assert result.exit_code == 1
    assert "is not empty" in result.output and "--force" in result.output
    assert _files(target) == {"notes.txt"}


def test_init_force_keeps_the_users_other_files(tmp_path: Path, linear_onnx: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "README.md").write_text("# my own readme")
    (target / ".gitignore").write_text("secret.env\n")
    result = runner.invoke(app, ["init", str(target), "--model", str(linear_onnx), "--force"])
    assert result.exit_code == 0, result.output
    assert (target / "notes.txt").read_text() == "mine"
    assert (target / "README.md").read_text() == "# my own readme"
    assert (target / ".gitignore").read_text() == "secret.env\n"
    assert "kept your README.md" in result.output and "kept your .gitignore" in result.output
    assert (target / "mlgit.yaml").is_file() and (target / "tests" / "test_model.py").is_file()


def test_init_never_overwrites_a_model_repository(model_repo: Path, linear_onnx: Path) -> None:
    before = (model_repo / "mlgit.yaml").read_text()
    result = runner.invoke(app, ["init", str(model_repo), "--model", str(linear_onnx), "--force"])
    assert result.exit_code == 1 and "already a model repository" in result.output
    assert (model_repo / "mlgit.yaml").read_text() == before


def test_init_dot_fills_the_current_directory_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    result = runner.invoke(app, ["init", "."])
    assert result.exit_code == 0, result.output
    assert here.stat().st_ino == inode, "the directory itself must stay (it may be the shell's current one)"
    assert (here / "mlgit.yaml").is_file()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--name", "Bad_Name"), ("--domain", "not a domain"), ("--registry", "Registry.Example.com/x")],
)
def test_bad_flag_values_are_usage_errors_naming_the_flag(tmp_path: Path, flag: str, value: str) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "repo"), flag, value])
    assert result.exit_code == 2 and f"{flag} {value!r}" in result.output
    assert not (tmp_path / "repo").exists() and list(tmp_path.iterdir()) == []


def test_a_name_derived_from_the_directory_is_a_valid_model_name(tmp_path: Path, linear_onnx: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "9 Lives"), "--model", str(linear_onnx)])
    assert result.exit_code == 0, result.output
    assert "name: model-9-lives" in (tmp_path / "9 Lives" / "mlgit.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--example", "no-such-example"], "unknown example 'no-such-example'"),
        (["--model", "README.md"], "is not a .onnx file"),
        (["--model", "x.onnx", "--example", "iris-classifier"], "exclude each other"),
    ],
)
def test_init_rejects_bad_sources(tmp_path: Path, args: list[str], message: str) -> None:
    target = tmp_path / "repo"
    result = runner.invoke(app, ["init", str(target), *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_init_with_a_corrupt_model_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 20)
    result = runner.invoke(app, ["init", str(tmp_path / "repo"), "--model", str(bad)])
    assert result.exit_code == 1 and "is not an ONNX model" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def test_init_into_an_unwritable_place(tmp_path: Path, linear_onnx: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["init", str(blocker / "repo"), "--model", str(linear_onnx)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot write" in result.output or "cannot create" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions; the path above covers root")
def test_init_into_a_read_only_directory(tmp_path: Path, linear_onnx: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o500)
    result = runner.invoke(app, ["init", str(parent / "repo"), "--model", str(linear_onnx)])
    assert result.exit_code == 1 and "cannot write" in result.output


def test_init_git_makes_the_first_commit(tmp_path: Path, linear_onnx: Path) -> None:
    target = tmp_path / "repo"
    result = runner.invoke(app, ["init", str(target), "--model", str(linear_onnx), "--git"])
    assert result.exit_code == 0, result.output
    log = subprocess.run(["git", "log", "--oneline"], cwd=target, capture_output=True, text=True, check=True)
    assert "Initial model repository" in log.stdout
    status = subprocess.run(["git", "status", "--porcelain"], cwd=target, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def test_init_fixed_batch_model_turns_batching_off(tmp_path: Path) -> None:
    model = write_linear_model(tmp_path / "fixed.onnx", batch=1)
    result = runner.invoke(app, ["init", str(tmp_path / "repo"), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "enabled: false" in (tmp_path / "repo" / "mlgit.yaml").read_text()


@pytest.mark.parametrize(
    ("make_model", "cause", "fix"),
    [
        (lambda p: write_linear_model(p, opset=FUTURE_OPSET), rf"opset {FUTURE_OPSET} of ai\.onnx", r"re-export"),
        (write_custom_op_model, r"com\.acme:Frobnicate", r"standard ONNX operators"),
    ],
    ids=["opset-too-new", "custom-op"],
)
def test_init_with_a_model_onnxruntime_cannot_load_names_cause_and_fix(
    tmp_path: Path, make_model: Callable[[Path], Path], cause: str, fix: str
) -> None:
    model = make_model(tmp_path / "net.onnx")
    result = runner.invoke(app, ["init", str(tmp_path / "repo"), "--model", str(model)])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert re.search(cause, result.output) and re.search(fix, result.output), result.output
    assert f"{model}: onnxruntime" in result.output  # the user's file, not a staging copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


def test_init_copies_external_data_and_the_repository_validates(tmp_path: Path) -> None:
    export = tmp_path / "export"
    model = write_external_data_model(export / "net.onnx", location="weights/net.bin")
    target = tmp_path / "big-model"
    result = runner.invoke(app, ["init", str(target), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert (target / "model" / "weights" / "net.bin").read_bytes() == (export / "weights" / "net.bin").read_bytes()
    dockerfile = (target / "Dockerfile").read_text()
    assert 'COPY ["model/weights/net.bin", "/models/big-model/1/weights/net.bin"]' in dockerfile
    assert json.loads((target / "model" / "sample.json").read_text())["expected_outputs"][0]["name"] == "y"
    assert runner.invoke(app, ["validate", str(target)]).exit_code == 0
    assert runner.invoke(app, ["render", str(target), "--check"]).exit_code == 0


def test_init_refuses_a_model_whose_external_data_is_missing(tmp_path: Path) -> None:
    model = write_external_data_model(tmp_path / "net.onnx", location="net.bin")
    (tmp_path / "net.bin").unlink()
    result = runner.invoke(app, ["init", str(tmp_path / "repo"), "--model", str(model)])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert "net.bin" in result.output and "not found" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


def test_init_writes_an_unknown_rank_as_such_never_as_a_scalar(tmp_path: Path) -> None:
    model = write_shapeless_model(tmp_path / "shapeless.onnx")
    target = tmp_path / "repo"
    result = runner.invoke(app, ["init", str(target), "--model", str(model)])
    assert result.exit_code == 0, result.output
    config = (target / "mlgit.yaml").read_text()
    assert "shape: []" not in config and '{name: "x", datatype: FP32, shape: null}' in config
    settings = json.loads((target / "model-settings.json").read_text())
    assert settings["inputs"] == [{"name": "x", "datatype": "FP32", "shape": None}]
    assert runner.invoke(app, ["validate", str(target)]).exit_code == 0


def test_init_with_a_missing_model_names_the_flag_not_mlgit_yaml(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "repo"), "--model", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 1
    assert "--model" in result.output and "missing.onnx" in result.output and "not found" in result.output
    assert "mlgit.yaml" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["model", "example"])
def test_the_repository_folder_gets_the_usual_mode(source: str, tmp_path: Path, linear_onnx: Path) -> None:
    """Built in a private temporary folder (0700) and renamed into place: it must not stay private."""
    from mlgit.scaffold import InitOptions, init_repository

    options = {"model": linear_onnx, "name": "linear"} if source == "model" else {"example": "iris-classifier"}
    umask = os.umask(0o022)
    try:
        repo = init_repository(InitOptions(target=tmp_path / "repo", **options))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(repo.stat().st_mode) == 0o755
