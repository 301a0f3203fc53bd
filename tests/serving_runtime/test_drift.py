"""Input drift: PSI math, the sliding window, and a real server whose score rises on shifted inputs only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from mlgit.drift_profile import profile_input
from mlgit.model_settings import DriftSettings, FeatureProfile, InputProfile, TensorSpec
from mlgit_serving.drift import EPSILON, InputWindow, psi
from tests.serving_runtime.conftest import (
    IRIS_SAMPLE,
    RunningServer,
    classifier,
    start_server,
    stop_server,
    write_model,
)

WINDOW = 500
THRESHOLD = 0.2
INPUT = TensorSpec(name="input", datatype="FP32", shape=[-1, 4])


def test_psi_of_known_histograms() -> None:
    assert psi(np.array([0.25, 0.75]), np.array([0.25, 0.75])) == 0
    expected = (0.5 - 0.9) * np.log(0.5 / 0.9) + (0.5 - 0.1) * np.log(0.5 / 0.1)
    assert psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])) == pytest.approx(expected)
    # An empty bin counts as EPSILON: finite, and large when the reference had rows there.
    empty = psi(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    assert empty == pytest.approx(0.5 * np.log(2) + (EPSILON - 0.5) * np.log(EPSILON / 0.5))
    # One row of shares per feature: PSI per feature.
    both = psi(np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert both[0] == 0 and both[1] > THRESHOLD


def _one_feature_window(size: int) -> InputWindow:
    """Two bins split at 0: negatives in bin 0, zero and above in bin 1; the reference half and half."""
    feature = FeatureProfile(feature="0", edges=[0.0], proportions=[0.5, 0.5])
    return InputWindow(InputProfile(name="x", summary=False, features=[feature]), size)


def test_the_window_keeps_the_last_rows_only() -> None:
    window = _one_feature_window(4)
    window.add(np.array([[-1.0], [-1.0], [-1.0]]))
    assert window.counts.tolist() == [[3, 0]] and window.rows == 3
    window.add(np.array([[1.0], [1.0]]))  # fills the window and pushes the oldest row out
    assert window.counts.tolist() == [[2, 2]] and window.rows == 4
    assert window.scores()[0] == 0
    window.add(np.array([[1.0]]))
    assert window.counts.tolist() == [[1, 3]]
    window.add(np.array([[-1.0]] * 3 + [[1.0]] * 4))  # longer than the window: its last 4 rows
    assert window.counts.tolist() == [[0, 4]]
    window.add(np.array([[-1.0], [-1.0]]))
    assert window.counts.tolist() == [[2, 2]]


def test_a_value_on_an_edge_falls_in_the_bin_above_as_in_the_cli_profile() -> None:
    window = _one_feature_window(2)
    window.add(np.array([[0.0], [-0.0]]))
    assert window.counts.tolist() == [[0, 2]]


def test_summary_features_are_the_rows_mean_and_std() -> None:
    spec = TensorSpec(name="image", datatype="FP32", shape=[-1, 10, 10])
    reference = np.random.default_rng(1).normal(size=(200, 10, 10))
    profile = profile_input(spec, reference, 5)
    assert profile.summary and [f.feature for f in profile.features] == ["mean", "std"]
    window = InputWindow(profile, 200)
    window.add(reference.astype(np.float32))
    assert window.scores().max() < 0.05
    window.add(reference * 3)  # same mean, three times the spread: the std feature drifts, the mean barely
    mean, std = window.scores()
    assert std > 1 > mean


def _reference(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal([5.8, 3.0, 3.8, 1.2], [0.8, 0.4, 1.8, 0.8], size=(rows, 4))


@pytest.fixture(scope="module")
def drift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("drift-models")
    profile = profile_input(INPUT, _reference(2000, seed=0).astype(np.float32), bins=10)
    drift = DriftSettings(window=WINDOW, threshold=THRESHOLD, inputs=[profile])
    settings = {"inputs": [INPUT.model_dump()], "drift": drift.model_dump(mode="json")}
    write_model(root, "iris", {"1": classifier(0.0)}, settings, IRIS_SAMPLE)
    running = start_server(root)
    running.wait_ready()
    yield running
    stop_server(running)


def _send(client: httpx.Client, rows: np.ndarray) -> None:
    for chunk in np.array_split(rows.astype(np.float32), len(rows) // 50):
        body = {
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": list(chunk.shape), "data": chunk.ravel().tolist()}
            ]
        }
        assert client.post("/v2/models/iris/infer", json=body).status_code == 200


def _scores(client: httpx.Client) -> dict[str, float]:
    pattern = r'^mlgit_input_drift_score\{feature="(\d+)",input="input",model="iris",version="1"\} (\S+)$'
    return {f: float(v) for f, v in re.findall(pattern, client.get("/metrics").text, re.MULTILINE)}


def test_a_server_scores_drift_on_shifted_inputs_only(drift_server: RunningServer) -> None:
    with httpx.Client(base_url=drift_server.url) as client:
        assert _scores(client) == {}  # no rows yet: no score
        _send(client, _reference(50, seed=4))  # fewer rows than are binned at once: the scrape bins them
        assert sorted(_scores(client)) == ["0", "1", "2", "3"]
        _send(client, _reference(WINDOW, seed=1))
        like = _scores(client)
        assert max(like.values()) < THRESHOLD / 2, like
        _send(client, _reference(WINDOW, seed=2) + np.array([0.8, 0.0, 0.0, 0.0]))  # one feature shifts by one std
        shifted = _scores(client)
        assert shifted["0"] > THRESHOLD and max(shifted[f] for f in "123") < THRESHOLD / 2, shifted
        _send(client, _reference(WINDOW, seed=3))  # the shifted rows slide out of the window
        assert max(_scores(client).values()) < THRESHOLD / 2
