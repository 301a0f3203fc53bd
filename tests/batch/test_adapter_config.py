"""model.adapter in mlgit.yaml: checked against the signature with the field and its line named, and rendered
into model-settings.json for the runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlgit.config.load import CONFIG_FILE, load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app
from mlgit.runtime_settings import runtime_settings_dict
from mlgit.scaffold import InitOptions, init_repository
from tests.batch.models import write_segmenter

GOOD = {"kind": "image", "formats": ["png", "fits"], "output": {"name": "mask", "kind": "mask"}}


@pytest.fixture
def image_repo(tmp_path: Path) -> Path:
    """`mlgit init --model` around the tiny segmenter (image[batch, 1, 8, 8] -> mask, mean)."""
    model = write_segmenter(tmp_path / "seg.onnx")
    return init_repository(InitOptions(target=tmp_path / "repo", name="seg", model=model))


def set_adapter(repo: Path, adapter: dict[str, Any], *, signature: bool = True) -> None:
    doc = read_yaml(repo / CONFIG_FILE)
    doc["model"]["adapter"] = adapter
    if not signature:
        del doc["model"]["signature"]
    (repo / CONFIG_FILE).write_text(dump_yaml(doc), encoding="utf-8")


def test_the_adapter_lands_in_model_settings_json(image_repo: Path) -> None:
    set_adapter(image_repo, GOOD)
    rendered = runtime_settings_dict(load_project(image_repo, warn=False))["adapter"]
    assert rendered == {
        "kind": "image", "input": None, "formats": ["png", "fits"], "layout": "NCHW", "scale": 1 / 255,
        "mean": [0.0], "std": [1.0], "output": {"name": "mask", "kind": "mask", "threshold": 0.5},
    }  # fmt: skip


@pytest.mark.parametrize("signature", [True, False], ids=["declared-signature", "signature-from-the-model"])
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"input": "pixels"}, "model.adapter.input", "'pixels' is not an input of the model; it has ['image']"),
        (
            {"layout": "NHWC"},
            "model.adapter.layout",
            "NHWC puts the channels of 'image' (shape [-1, 1, 8, 8]) at dimension 3",
        ),
        ({"mean": [0.1, 0.2]}, "model.adapter.mean", "2 values for 1 channel(s); give 1"),
        ({"output": {"name": "score"}}, "model.adapter.output.name", "'score' is not an output of the model"),
        ({"output": {"name": "mean"}}, "model.adapter.output.name", "'mean' (FP32 [-1]) is not a one-channel image"),
    ],
)
def test_an_adapter_that_does_not_fit_the_model_is_named(
    change: dict[str, Any], field: str, message: str, signature: bool, image_repo: Path
) -> None:
    set_adapter(image_repo, {**GOOD, **change}, signature=signature)
    result = CliRunner().invoke(app, ["validate", str(image_repo)])
    assert result.exit_code == 1, result.output
    assert f"{field}: {message}" in " ".join(result.output.split())
    assert f"{CONFIG_FILE}:" in result.output  # file:line of the adapter


def test_an_adapter_field_of_its_own_is_checked(image_repo: Path) -> None:
    set_adapter(image_repo, {**GOOD, "std": [0.0], "formats": ["gif"]})
    output = " ".join(CliRunner().invoke(app, ["validate", str(image_repo)]).output.split())
    assert "model.adapter.formats.0: Input should be 'png', 'jpeg' or 'fits'" in output
