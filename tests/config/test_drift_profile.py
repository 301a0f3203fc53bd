"""The drift profile `mlgit render` writes into model-settings.json from monitoring.drift.reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlgit.config.load import CONFIG_FILE, load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.drift_profile import drift_off_reason, drift_settings
from mlgit.errors import MlgitError
from mlgit.main import app
from mlgit.runtime_settings import runtime_settings_dict
from mlgit_serving.drift import InputWindow


def _reference(repo: Path, name: str = "model/reference.npz", **arrays: np.ndarray) -> Path:
    path = repo / name
    np.savez(path, **arrays)
    return path


def _rows(n: int = 400) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)


def _set_drift(repo: Path, **drift: object) -> None:
    doc = read_yaml(repo / CONFIG_FILE)
    doc["monitoring"] = {"drift": drift}
    (repo / CONFIG_FILE).write_text(dump_yaml(doc), encoding="utf-8")


def test_the_reference_becomes_quantile_bins_per_feature(model_repo: Path) -> None:
    _reference(model_repo, x=_rows())
    _set_drift(model_repo, bins=4, window=50, threshold=0.3)
    drift = runtime_settings_dict(load_project(model_repo))["drift"]
    assert isinstance(drift, dict) and (drift["window"], drift["threshold"]) == (50, 0.3)
    (profile,) = drift["inputs"]
    assert profile["name"] == "x" and profile["summary"] is False
    assert [f["feature"] for f in profile["features"]] == ["0", "1", "2", "3"]
    for feature in profile["features"]:
        assert len(feature["edges"]) == 3 and feature["edges"] == sorted(feature["edges"])
        assert feature["proportions"] == pytest.approx([0.25] * 4, abs=0.01)  # quantile bins: equal shares


def test_the_runtime_bins_the_reference_as_the_profile_says(model_repo: Path) -> None:
    """The CLI and the runtime apply one binning rule: the reference itself scores (almost) zero."""
    rows = np.round(_rows(), 1)  # ties on the edges, where the two sides could disagree
    _reference(model_repo, x=rows)
    settings = drift_settings(load_project(model_repo))
    assert settings is not None
    window = InputWindow(settings.inputs[0], len(rows))
    window.add(rows)
    shares = [f.proportions for f in settings.inputs[0].features]
    assert window.counts / len(rows) == pytest.approx(np.array(shares), abs=1e-6)


def test_without_a_reference_drift_is_off_and_validate_says_why(model_repo: Path) -> None:
    project = load_project(model_repo)
    assert runtime_settings_dict(project)["drift"] is None
    reason = drift_off_reason(project)
    assert reason is not None and reason.startswith("monitoring.drift.reference: model/reference.npz not found")
    result = CliRunner().invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 0 and "monitoring.drift.reference" not in result.output  # nothing shows drift
    doc = read_yaml(model_repo / CONFIG_FILE)
    doc["monitoring"] = {"enabled": True}  # dashboards and alerts that would show it
    (model_repo / CONFIG_FILE).write_text(dump_yaml(doc), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(model_repo)])
    assert result.exit_code == 0 and "monitoring.drift.reference" in result.output
    _reference(model_repo, x=_rows())
    assert drift_off_reason(load_project(model_repo)) is None


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y": _rows()}, "no array for input 'x'"),
        ({"x": _rows(), "z": _rows()}, "arrays ['z'] are not inputs of the model"),
        ({"x": _rows()[:, :3]}, "input 'x' has shape [400, 3]; the signature says [-1, 4]"),
        ({"x": _rows().ravel()}, "input 'x' has shape [1600]"),
        ({"x": np.array([["a"] * 4] * 20)}, "input 'x' is <U1, not numbers"),
        ({"x": _rows(5)}, "input 'x' has 5 rows; monitoring.drift.bins is 10"),
        (
            {"x": np.where(np.arange(1600).reshape(400, 4) == 9, np.nan, _rows())},
            "NaN or infinite values (the first in row 2)",
        ),
        (
            {"x": np.where(np.arange(1600).reshape(400, 4) == 0, np.inf, _rows())},
            "NaN or infinite values (the first in row 0)",
        ),
    ],
)
def test_a_reference_that_does_not_fit_the_signature_names_file_and_input(
    model_repo: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    path = _reference(model_repo, **arrays)
    with pytest.raises(MlgitError) as caught:
        runtime_settings_dict(load_project(model_repo))
    assert caught.value.message.startswith(f"{path}: ") and message in caught.value.message


def test_a_named_reference_that_is_missing_is_an_error(model_repo: Path) -> None:
    _set_drift(model_repo, reference="data/ref.npz")
    with pytest.raises(MlgitError, match=r"^monitoring.drift.reference: data/ref.npz not found"):
        runtime_settings_dict(load_project(model_repo))


def test_a_file_that_is_not_npz_is_an_error(model_repo: Path) -> None:
    (model_repo / "model" / "reference.npz").write_text("rows", encoding="utf-8")
    with pytest.raises(MlgitError, match=r"not a readable \.npz"):
        runtime_settings_dict(load_project(model_repo))
