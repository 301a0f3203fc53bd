"""A hand-written model-settings.json (or none): the contract's defaults, and its mistakes named at load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlgit_serving.errors import ModelLoadError
from mlgit_serving.model_settings import ModelSettings
from mlgit_serving.repository import read_settings


def _read(tmp_path: Path, settings: dict[str, object]) -> ModelSettings:
    (tmp_path / "model-settings.json").write_text(json.dumps(settings))
    return read_settings(tmp_path)


def test_no_file_and_an_empty_one_mean_the_same(tmp_path: Path) -> None:
    assert read_settings(tmp_path) == _read(tmp_path, {}) == ModelSettings()


def test_a_bare_file_gets_the_device_default_providers_and_no_batching(tmp_path: Path) -> None:
    """Batching is opt-in here (mlgit.yaml turns it on; docs/contracts.md says why they differ)."""
    cpu = _read(tmp_path, {})
    assert [p.model_dump() for p in cpu.providers] == [{"name": "CPUExecutionProvider", "options": {}}]
    assert cpu.batching.enabled is False
    gpu = _read(tmp_path, {"device": "gpu"})
    assert [p.model_dump() for p in gpu.providers] == [
        {"name": "CUDAExecutionProvider", "options": {"device_id": 0}},
        {"name": "CPUExecutionProvider", "options": {}},
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"providers": [{"name": "OpenVINOExecutionProvider"}]}, "providers.0.name: Input should be"),
        (
            {"device": "gpu", "providers": [{"name": "CPUExecutionProvider"}]},
            "providers: a GPU model needs CUDAExecutionProvider or TensorrtExecutionProvider",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 4]}]},
            "inputs.0: Value error, shape: [0, 4]: each dimension is a positive size or -1 (dynamic)",
        ),
    ],
)
def test_mistakes_are_named_at_load(tmp_path: Path, settings: dict[str, object], message: str) -> None:
    with pytest.raises(ModelLoadError) as failed:
        _read(tmp_path, settings)
    assert message in str(failed.value)
