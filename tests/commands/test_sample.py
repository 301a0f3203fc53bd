"""`mlgit sample [--check]`: expected outputs recomputed after retraining, the file's own layout kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlgit.main import app
from mlgit.samples.refresh import describe_change, splice_expected
from tests.onnx_models import write_linear_model

runner = CliRunner()


def _retrain(repo: Path) -> None:
    write_linear_model(repo / "model" / "model.onnx", scale=2.0)


def test_check_after_retraining_fails_showing_the_difference_and_writes_nothing(model_repo: Path) -> None:
    _retrain(model_repo)
    sample = model_repo / "model" / "sample.json"
    before = sample.read_bytes()
    result = runner.invoke(app, ["sample", str(model_repo), "--check"])
    assert result.exit_code == 1, result.output
    assert "changed y: max abs diff" in result.output and "max rel diff 1 (beyond rtol" in result.output
    assert "the expected outputs differ" in result.output and "run `mlgit sample`" in result.output
    assert sample.read_bytes() == before


def test_sample_rewrites_the_expected_outputs_and_validate_passes_again(model_repo: Path) -> None:
    _retrain(model_repo)
    assert runner.invoke(app, ["validate", str(model_repo)]).exit_code == 1
    result = runner.invoke(app, ["sample", str(model_repo)])
    assert result.exit_code == 0, result.output
    assert "changed y: max abs diff" in result.output and "wrote model/sample.json" in result.output
    sample = json.loads((model_repo / "model" / "sample.json").read_text())
    x = np.array(sample["inputs"][0]["data"], dtype=np.float32).reshape(1, 4)
    weights = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 * 2
    assert sample["expected_outputs"][0]["data"] == pytest.approx((x @ weights).reshape(-1).tolist(), rel=1e-6)
    assert runner.invoke(app, ["validate", str(model_repo)]).exit_code == 0
    again = runner.invoke(app, ["sample", str(model_repo), "--check"])
    assert again.exit_code == 0 and "same y: max abs diff 0" in again.output and "up to date" in again.output


def test_an_unchanged_model_leaves_the_file_untouched(model_repo: Path) -> None:
    sample = model_repo / "model" / "sample.json"
    stat = sample.stat()
    result = runner.invoke(app, ["sample", str(model_repo)])
    assert result.exit_code == 0 and "up to date" in result.output
    assert sample.stat().st_mtime_ns == stat.st_mtime_ns


def test_the_users_layout_and_own_keys_are_kept(model_repo: Path) -> None:
    path = model_repo / "model" / "sample.json"
    sample = json.loads(path.read_text())
    mine = {"_comment": "row 17 of the validation set", "inputs": sample["inputs"], "id": "golden-1"}
    mine["expected_outputs"] = sample["expected_outputs"]
    mine["parameters"] = {"note": "kept"}
    text = json.dumps(mine, indent=4) + "\n"
    path.write_text(text)
    _retrain(model_repo)
    assert runner.invoke(app, ["sample", str(model_repo)]).exit_code == 0
    new_text = path.read_text()
    new = json.loads(new_text)
    assert list(new) == ["_comment", "inputs", "id", "expected_outputs", "parameters"]
    assert new["expected_outputs"] != sample["expected_outputs"]
    assert new_text == json.dumps({**mine, "expected_outputs": new["expected_outputs"]}, indent=4) + "\n"


def test_a_sample_without_expected_outputs_gets_them(model_repo: Path) -> None:
    path = model_repo / "model" / "sample.json"
    inputs = json.loads(path.read_text())["inputs"]
    path.write_text(json.dumps({"inputs": inputs}) + "\n")
    result = runner.invoke(app, ["sample", str(model_repo)])
    assert result.exit_code == 0 and "changed y: new: FP32 [1, 3]" in result.output
    assert path.read_text() == json.dumps({"inputs": inputs, "expected_outputs": _expected(path)}) + "\n"


def _expected(path: Path) -> list[dict[str, object]]:
    return json.loads(path.read_text())["expected_outputs"]


def test_splice_keeps_every_other_byte() -> None:
    text = '{ "inputs" : [ {"name": "x"} ] ,\n  "expected_outputs": [1],  "extra": {"a": [1, 2]}\n}\n'
    assert splice_expected(text, [2]) == text.replace("[1],", "[2],")
    indented = '{\n  "inputs": [],\n  "expected_outputs": [\n    1\n  ]\n}'
    new = '{\n  "inputs": [],\n  "expected_outputs": [\n    {\n      "a": 2\n    }\n  ]\n}'
    assert splice_expected(indented, [{"a": 2}]) == new
    added = '{\n  "inputs": [],\n  "expected_outputs": [\n    3\n  ]\n}'
    assert splice_expected('{\n  "inputs": []\n}', [3]) == added


def test_exact_outputs_show_the_values_that_changed() -> None:
    old = {"name": "label", "datatype": "INT64", "shape": [3], "data": [0, 1, 2]}
    change = describe_change(old, {**old, "data": [0, 2, 2]}, rtol=1e-4, atol=1e-5)
    assert change.changed and change.summary == "1 of 3 values differ: [0, 1, 2] -> [0, 2, 2]"
    assert not describe_change(old, dict(old), rtol=0, atol=0).changed
    reshaped = describe_change(old, {**old, "shape": [1, 3]}, rtol=0, atol=0)
    assert reshaped.changed and reshaped.summary == "INT64 [3] -> INT64 [1, 3]"


def test_float_outputs_within_tolerance_are_the_same() -> None:
    old = {"name": "p", "datatype": "FP32", "shape": [2], "data": [1.0, 0.5]}
    within = describe_change(old, {**old, "data": [1.00001, 0.5]}, rtol=1e-4, atol=1e-5)
    assert not within.changed and within.summary.startswith("max abs diff 1e-05, max rel diff 1e-05")
    beyond = describe_change(old, {**old, "data": [1.1, 0.5]}, rtol=1e-4, atol=1e-5)
    assert beyond.changed and "(beyond rtol 0.0001, atol 1e-05)" in beyond.summary


def test_a_model_that_cannot_run_the_sample_writes_nothing(model_repo: Path) -> None:
    write_linear_model(model_repo / "model" / "model.onnx", opset=99)
    before = (model_repo / "model" / "sample.json").read_bytes()
    result = runner.invoke(app, ["sample", str(model_repo)])
    assert result.exit_code == 1 and "onnxruntime cannot load the model" in result.output
    assert (model_repo / "model" / "sample.json").read_bytes() == before
