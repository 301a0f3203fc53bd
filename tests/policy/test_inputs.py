"""The input documents are read from the files the policies judge: the committed .gitlab-ci.yml and the
model-settings.json of each environment's built ConfigMap, never a re-render or mlgit.yaml."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.model_settings import BatchingSettings, TensorSpec
from mlgit.policy.check import run_check
from mlgit.policy.inputs import environment_input, largest_input_bytes, pipeline_input, served_settings
from mlgit.policy.settings import PlatformSettings

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
SETTINGS = "deploy/base/model-settings.json"


def _findings(repo: Path, environments: list[str], pipeline: bool) -> set[tuple[str, str]]:
    project = load_project(repo)
    result = run_check(project, environments, pipeline=pipeline, today=dt.date.today(), platform=PlatformSettings())
    return {(f.target, f.policy.id) for f in result.findings}


X = TensorSpec(name="x", datatype="FP32", shape=[-1, 4])
SAMPLE = [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [0.0] * 8}]


def test_largest_input_is_a_full_batch() -> None:
    assert largest_input_bytes([X], BatchingSettings(enabled=True, max_batch_size=32), SAMPLE) == 32 * 4 * 4
    # Without batching the server takes what one request sends: the sample's rows.
    assert largest_input_bytes([X], BatchingSettings(enabled=False), SAMPLE) == 2 * 4 * 4


def test_bytes_inputs_are_sized_from_the_sample() -> None:
    spec = TensorSpec(name="s", datatype="BYTES", shape=[-1])
    sample = [{"name": "s", "datatype": "BYTES", "shape": [2], "data": ["ab", "cdef"]}]
    assert largest_input_bytes([spec], BatchingSettings(enabled=True, max_batch_size=10), sample) == 10 * 14 // 2


def test_an_input_the_sample_does_not_send_is_an_error() -> None:
    with pytest.raises(MlgitError, match="declares input 'y'"):
        largest_input_bytes([X, TensorSpec(name="y", datatype="FP32", shape=[-1])], BatchingSettings(), SAMPLE)


def _config_map(text: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": "linear-settings-abc"}, "data": {"model-settings.json": text}}


def test_settings_are_read_from_the_one_config_map_as_the_runtime_reads_them() -> None:
    other = {"kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"app.conf": "x"}}
    settings = served_settings([other, _config_map('{"batching": {"max_batch_size": 8}}')], "dev")
    # What the file leaves out takes the runtime's defaults: batching stays off unless the file turns it on.
    assert (settings.batching.enabled, settings.batching.max_batch_size, settings.inputs) == (False, 8, None)
    with pytest.raises(MlgitError, match="hold 0 ConfigMaps"):
        served_settings([other], "dev")


@pytest.mark.parametrize(
    ("text", "problem"), [("{", "(file): Invalid JSON"), ('{"batching": {"size": 1}}', "batching.size")]
)
def test_settings_the_runtime_would_refuse_are_an_error(text: str, problem: str) -> None:
    with pytest.raises(MlgitError, match="ConfigMap linear-settings-abc of dev") as error:
        served_settings([_config_map(text)], "dev")
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


@needs_kubectl
def test_ml003_judges_the_built_config_map_not_mlgit_yaml(model_repo: Path) -> None:
    """deploy/ edited by hand: the server admits batches of 5,000,000 rows, far above mlgit.yaml's 32."""
    path = model_repo / SETTINGS
    settings = json.loads(path.read_text(encoding="utf-8"))
    assert settings["batching"]["max_batch_size"] != 5_000_000
    settings["batching"]["max_batch_size"] = 5_000_000
    path.write_text(json.dumps(settings), encoding="utf-8")
    document = environment_input(load_project(model_repo), "dev").document
    assert document["context"]["model"]["largest_input_bytes"] == 5_000_000 * 4 * 4
    # 80 MB of input against the 64 MiB body limit mlgit.yaml's serving.max_request_bytes sets.
    assert ("dev", "MLGIT-ML-003") in _findings(model_repo, ["dev"], pipeline=False)


@needs_kubectl
def test_settings_without_inputs_are_sized_from_the_model(model_repo: Path) -> None:
    """model-settings.json may leave the inputs out: the runtime then serves the ONNX model's own."""
    path = model_repo / SETTINGS
    settings = json.loads(path.read_text(encoding="utf-8"))
    del settings["inputs"]
    path.write_text(json.dumps(settings), encoding="utf-8")
    document = environment_input(load_project(model_repo), "dev").document
    assert document["context"]["model"]["largest_input_bytes"] == 32 * 4 * 4  # FP32 [-1, 4], 32 rows


@needs_kubectl
def test_no_policy_reads_a_host_so_the_context_has_none(model_repo: Path) -> None:
    project = load_project(model_repo)
    assert "host" not in environment_input(project, "dev").document["context"]
    pipeline, _ = pipeline_input(project)
    assert {"host", "model"}.isdisjoint(pipeline.document["context"])


def test_pipeline_policies_judge_the_committed_file(model_repo: Path) -> None:
    """.gitlab-ci.yml edited by hand (deploy-prod loses its on_stop): what GitLab runs is what is judged."""
    path = model_repo / ".gitlab-ci.yml"
    text = path.read_text(encoding="utf-8")
    edited = text.replace("    on_stop: destroy-prod\n", "", 1)
    assert edited != text
    path.write_text(edited, encoding="utf-8")
    pipeline, _ = pipeline_input(load_project(model_repo))
    assert "on_stop" not in pipeline.document["pipeline"]["deploy-prod"]["environment"]
    assert _findings(model_repo, [], pipeline=True) == {("pipeline", "MLGIT-CI-001")}


def test_a_missing_pipeline_file_is_an_error_naming_it(model_repo: Path) -> None:
    (model_repo / ".gitlab-ci.yml").unlink()
    with pytest.raises(MlgitError, match=r"\.gitlab-ci\.yml not found") as error:
        pipeline_input(load_project(model_repo))
    assert "mlgit render" in (error.value.hint or "")


@pytest.mark.parametrize(("text", "line"), [("deploy-prod: [\n", 2), ("- a list\n", None)])
def test_an_unparsable_pipeline_file_is_an_error_at_its_line(model_repo: Path, text: str, line: int | None) -> None:
    path = model_repo / ".gitlab-ci.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MlgitError) as error:
        pipeline_input(load_project(model_repo))
    assert error.value.location is not None
    assert (error.value.location.path, error.value.location.line) == (path, line)
