"""`mlgit validate`: the model is loaded and run as the serving runtime does; external data; --json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from mlgit.main import app
from tests.onnx_models import FUTURE_OPSET, write_custom_op_model, write_external_data_model, write_linear_model

runner = CliRunner()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def external_repo(tmp_path: Path) -> Path:
    """A repository made by `mlgit init --model` from a model whose weights are in net.bin."""
    export = tmp_path / "export"
    export.mkdir()
    model = write_external_data_model(export / "net.onnx", location="net.bin")
    target = tmp_path / "repo"
    result = runner.invoke(app, ["init", str(target), "--model", str(model)])
    assert result.exit_code == 0, result.output
    return target


def _relocate(repo: Path, location: str) -> None:
    """Make the model name `location` as its external data file (the bytes stay where they are)."""
    path = repo / "model" / "model.onnx"
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize(
    ("make_model", "cause"),
    [
        (lambda p: write_linear_model(p, opset=FUTURE_OPSET), rf"opset {FUTURE_OPSET} of ai\.onnx"),
        (write_custom_op_model, r"operator com\.acme:Frobnicate"),
    ],
    ids=["opset-too-new", "custom-op"],
)
def test_a_model_onnxruntime_cannot_load_fails_validate(
    model_repo: Path, make_model: Callable[[Path], Path], cause: str
) -> None:
    make_model(model_repo / "model" / "model.onnx")  # same signature as before: only onnxruntime can tell
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert re.search(rf"model\.onnx: onnxruntime cannot load the model: .*{cause}", result.output), result.output
    assert "hint:" in result.output and "Traceback" not in result.output


def test_expected_outputs_that_the_model_does_not_give_fail_validate(model_repo: Path) -> None:
    write_linear_model(model_repo / "model" / "model.onnx", scale=2.0)  # retrained; the sample not refreshed
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "sample.json: the model's answer to the sample request is not the sample's expected_outputs" in result.output
    assert "output 'y': differs by up to" in result.output and "mlgit sample" in result.output


def test_a_repository_with_external_data_validates(external_repo: Path) -> None:
    assert (external_repo / "model" / "net.bin").is_file()
    result = runner.invoke(app, ["validate", str(external_repo)])
    assert result.exit_code == 0, result.output
    assert "answers its sample as expected" in result.output


@pytest.mark.parametrize(
    ("breaker", "pattern"),
    [
        (lambda r: (r / "model" / "net.bin").unlink(), r"external data file .*net\.bin not found \(tensors W\)"),
        (lambda r: (r / "model" / "net.bin").write_bytes(b"\0" * 10),
         r"net\.bin holds 10 bytes; the model reads up to byte 48 \(tensors W\)"),
        (lambda r: _relocate(r, "../net.bin"), r"'\.\./net\.bin' \(tensors W\) points outside the model's folder"),
        (lambda r: _relocate(r, "/tmp/net.bin"), r"location '/tmp/net\.bin' \(tensors W\) is not a relative path"),
    ],
    ids=["missing", "truncated", "outside", "absolute"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["validate", "render"])
def test_unusable_external_data_is_named(
    external_repo: Path, breaker: Callable[[Path], object], pattern: str, command: str
) -> None:
    breaker(external_repo)
    before = _snapshot(external_repo)
    result = runner.invoke(app, [command, str(external_repo)])
    assert result.exit_code == 1, result.output
    assert "model.onnx: the model's external data files are not usable" in result.output
    assert re.search(pattern, result.output), result.output
    assert _snapshot(external_repo) == before


def test_a_missing_model_is_reported_at_model_path_in_mlgit_yaml(model_repo: Path) -> None:
    (model_repo / "model" / "model.onnx").unlink()
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1
    assert re.search(r"mlgit\.yaml:\d+:\d+: model\.path: model/model\.onnx not found", result.output), result.output


def test_a_file_that_is_not_onnx_is_named_once(model_repo: Path) -> None:
    model = model_repo / "model" / "model.onnx"
    model.write_bytes(b"\x00\x01not a model at all" * 10)
    result = runner.invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 1
    assert f"{model}: the file is not an ONNX model" in result.output
    assert result.output.count(str(model)) == 1, result.output


def test_json_result_when_valid(model_repo: Path) -> None:
    result = runner.invoke(app, ["validate", str(model_repo), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == [] and report["name"] == "linear"
    assert report["model"]["signature"]["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert report["environments"] == ["dev", "staging", "prod"]


def test_json_result_with_problems_keeps_the_exit_code(model_repo: Path) -> None:
    config = model_repo / "mlgit.yaml"
    config.write_text(config.read_text() + "environments:\n  dev:\n    replicas: -1\n    replcas: 2\n")
    result = runner.invoke(app, ["validate", str(model_repo), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)  # stdout holds the JSON alone
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert problem["message"].endswith("is not valid (2 problems)") and len(problem["details"]) == 2
    assert any("unknown key 'replcas'" in d for d in problem["details"]) and problem["hint"]


def test_json_result_locates_a_problem_in_its_file(model_repo: Path) -> None:
    (model_repo / "model" / "model.onnx").unlink()
    result = runner.invoke(app, ["validate", str(model_repo), "--json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["file"] == str(model_repo / "mlgit.yaml") and problem["line"] and problem["column"]
    assert problem["message"] == "model.path: model/model.onnx not found"
