"""Which versions a server serves (MLGIT_SERVING_VERSIONS) and which the unversioned URLs answer with
(MLGIT_SERVING_DEFAULT_VERSION), through tritonclient against a real uvicorn server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mlgit_serving.settings import ServerSettings

from .conftest import classifier, classify, start_server, stop_server, write_model

BIASES = {"1": 0.0, "2": 50.0, "3": 100.0}  # each version answers differently
X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


def _infer(client: triton.InferenceServerClient, version: str = "") -> np.ndarray:
    tensor = triton.InferInput("input", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X)
    result = client.infer("iris", [tensor], model_version=version)
    return result.as_numpy("probabilities")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("versions")
    write_model(root, "iris", {v: classifier(b) for v, b in BIASES.items()}, {})
    return root


def test_only_the_chosen_versions_are_served_and_the_default_is_explicit(models: Path) -> None:
    running = start_server(models, versions=["1", "3"], default_version="1")
    try:
        running.wait_ready()
        client = triton.InferenceServerClient(url=running.address)
        assert client.get_model_metadata("iris")["versions"] == ["1", "3"]
        for version in ("1", "3"):
            np.testing.assert_allclose(_infer(client, version), classify(X, BIASES[version])[1], rtol=1e-5)
        # The unversioned URL answers with the default, not the highest version loaded.
        np.testing.assert_allclose(_infer(client), classify(X, BIASES["1"])[1], rtol=1e-5)
        with pytest.raises(InferenceServerException, match="has no version '2'") as refused:
            _infer(client, "2")
        assert refused.value.status() == "404"
        assert not client.is_model_ready("iris", "2")
        client.close()
    finally:
        stop_server(running)


def test_without_settings_every_version_is_served_and_the_highest_is_the_default(models: Path) -> None:
    running = start_server(models)
    try:
        running.wait_ready()
        client = triton.InferenceServerClient(url=running.address)
        assert client.get_model_metadata("iris")["versions"] == ["1", "2", "3"]
        np.testing.assert_allclose(_infer(client), classify(X, BIASES["3"])[1], rtol=1e-5)
        client.close()
    finally:
        stop_server(running)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"versions": ["1", "4"]}, "model 'iris' has no version 4 (it has ['1', '2', '3'])"),
        ({"versions": ["3"], "default_version": "1"}, "model 'iris': default version 1 is not among ['3']"),
    ],
)
def test_a_version_the_image_lacks_keeps_the_server_not_ready(models: Path, settings: dict, reason: str) -> None:
    running = start_server(models, **settings)
    try:
        running.wait_loaded()
        client = triton.InferenceServerClient(url=running.address)
        assert not client.is_server_ready()
        client.close()
        assert any(r.startswith(reason) for r in running.app.state.serving.repository.not_ready())
    finally:
        stop_server(running)


def test_the_versions_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGIT_SERVING_VERSIONS", "1, 3")
    monkeypatch.setenv("MLGIT_SERVING_DEFAULT_VERSION", "1")
    settings = ServerSettings()
    assert (settings.versions, settings.default_version) == (["1", "3"], "1")
