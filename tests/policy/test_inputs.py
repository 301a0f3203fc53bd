"""The input documents are read from the files the policies judge: the committed .gitlab-ci.yml, and the
built objects of each environment (the model-settings.json of its ConfigMap, its Deployment), never a
re-render or mlgit.yaml; what names and tiers them comes from the one Target every command uses."""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.model_settings import BatchingSettings, TensorSpec
from mlgit.policy.check import run_check
from mlgit.policy.inputs import (
    REVIEW_SAMPLE_SLUG,
    RUNTIME_DRAIN_SECONDS,
    context,
    drain_seconds,
    environment_input,
    environment_names,
    largest_input_bytes,
    pipeline_input,
    served_settings,
)
from mlgit.policy.pipeline import GITLAB_CI
from mlgit.policy.settings import PlatformSettings
from mlgit.resources import shipped_dir
from mlgit.targets import REVIEW, known_targets, target
from tests.conftest import REPO_ROOT

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
SETTINGS = "deploy/base/model-settings.json"
DEPLOYMENT = "deploy/base/deployment.yaml"


def _findings(repo: Path, environments: list[str], pipeline: bool) -> set[tuple[str, str]]:
    project = load_project(repo)
    result = run_check(project, environments, pipeline=pipeline, today=dt.date.today(), platform=PlatformSettings())
    return {(f.input_name, f.policy.id) for f in result.findings}


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


def _edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _served(data: dict[str, Any]) -> None:
    """What the server would run after a hand edit of deploy/: a delay far above every timeout, a GPU."""
    data["batching"]["max_delay_ms"] = 60000
    data["max_request_bytes"] = 12345
    data["device"], data["providers"] = "gpu", []


@needs_kubectl
def test_the_model_context_is_what_the_built_objects_run(model_repo: Path) -> None:
    """deploy/ edited by hand, mlgit.yaml untouched: the context states what the server would run."""
    _edit_json(model_repo / SETTINGS, _served)
    deployment = model_repo / DEPLOYMENT
    text = deployment.read_text(encoding="utf-8")
    edited = text.replace(
        'MLGIT_SERVING_DRAIN_SECONDS\n              value: "20"',
        'MLGIT_SERVING_DRAIN_SECONDS\n              value: "45"',
    )
    assert edited != text
    deployment.write_text(edited, encoding="utf-8")
    model = environment_input(load_project(model_repo), "dev").document["context"]["model"]
    assert (model["device"], model["max_delay_ms"], model["max_request_bytes"]) == ("gpu", 60000, 12345)
    assert model["drain_seconds"] == 45
    # The expectation MLGIT-RES-002 holds the Deployment against stays mlgit.yaml's: a CPU model, no GPU.
    assert (model["name"], model["gpus"]) == ("linear", 0)
    # The repro of the review: a batching delay of a minute in the served file is denied.
    assert ("dev", "MLGIT-ML-001") in _findings(model_repo, ["dev"], pipeline=False)


@needs_kubectl
def test_mlgit_yaml_alone_does_not_change_the_judged_facts(model_repo: Path) -> None:
    """The converse: mlgit.yaml edited, deploy/ stale. What runs is what deploy/ says: nothing to deny."""
    config = model_repo / "mlgit.yaml"
    text = config.read_text(encoding="utf-8")
    edited = text.replace("\nserving:\n", "\nserving:\n  drain_seconds: 90\n", 1)
    edited = edited.replace("\n  batching:\n", "\n  batching:\n    max_delay_ms: 60000\n", 1)
    assert "max_delay_ms: 60000" in edited and "drain_seconds: 90" in edited
    config.write_text(edited, encoding="utf-8")
    model = environment_input(load_project(model_repo), "dev").document["context"]["model"]
    assert (model["max_delay_ms"], model["drain_seconds"]) == (2.0, 20)
    assert ("dev", "MLGIT-ML-001") not in _findings(model_repo, ["dev"], pipeline=False)


def _deployment(env: list[dict[str, Any]] | None, container: str = "server") -> dict[str, Any]:
    pod = {"containers": [{"name": container, **({"env": env} if env is not None else {})}]}
    return {"kind": "Deployment", "metadata": {"name": "linear"}, "spec": {"template": {"spec": pod}}}


def test_the_drain_time_is_the_server_containers_else_the_runtimes_default() -> None:
    from mlgit_serving.settings import ServerSettings

    assert ServerSettings.model_fields["drain_seconds"].default == RUNTIME_DRAIN_SECONDS
    assert drain_seconds([_deployment([{"name": "MLGIT_SERVING_DRAIN_SECONDS", "value": "7.5"}])], "dev") == 7.5
    assert drain_seconds([_deployment(None)], "dev") == RUNTIME_DRAIN_SECONDS
    sidecar = _deployment([{"name": "MLGIT_SERVING_DRAIN_SECONDS", "value": "99"}], container="proxy")
    assert drain_seconds([sidecar], "dev") == RUNTIME_DRAIN_SECONDS
    with pytest.raises(MlgitError, match="Deployment linear of dev: MLGIT_SERVING_DRAIN_SECONDS is 'soon'"):
        drain_seconds([_deployment([{"name": "MLGIT_SERVING_DRAIN_SECONDS", "value": "soon"}])], "dev")


def _context_reads() -> tuple[set[str], set[str]]:
    """The keys of `context` and of `context.model` that the shipped policies read (lib.rego included)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(shipped_dir("policies").rglob("*.rego")))
    reads: dict[str, set[str]] = {"context": set(), "model": set()}
    for name in reads:
        pattern = (
            rf"\b(?:lib\.)?{name}\.(\w+)|\b(?:lib\.)?{name}\[\"(\w+)\"\]|object\.get\((?:lib\.)?{name},\s*\"(\w+)\""
        )
        reads[name] = {next(g for g in m.groups() if g) for m in re.finditer(pattern, text)}
    return reads["context"], reads["model"]


@needs_kubectl
def test_no_policy_reads_a_host_so_the_context_has_none(model_repo: Path) -> None:
    """Context the policies do not read is context nobody checks: none of them reads a host."""
    context_keys, model_keys = _context_reads()
    # The scan sees the reads there are, through lib.context, `context` in lib.rego and object.get.
    assert {"allowed_registries", "tier", "tiers", "model"} <= context_keys
    assert {"gpus", "max_delay_ms", "drain_seconds", "largest_input_bytes"} <= model_keys
    assert "host" not in context_keys | model_keys
    project = load_project(model_repo)
    assert "host" not in environment_input(project, "dev").document["context"]
    pipeline, _ = pipeline_input(project)
    assert {"host", "model"}.isdisjoint(pipeline.document["context"])


def test_the_policies_read_names_and_tiers_from_the_one_target(model_repo: Path) -> None:
    """An unknown environment is refused with the words of every other command; review is what the review
    Target of the branch `policy-check` is."""
    project = load_project(model_repo)
    assert environment_names(project, None) == known_targets(project.config)
    for name in ("qa", "pipeline"):
        with pytest.raises(MlgitError) as ours:
            environment_names(project, name)
        with pytest.raises(MlgitError) as deploys:
            target(project.config, name)
        assert (ours.value.message, ours.value.hint) == (deploys.value.message, deploys.value.hint)
    review = target(project.config, REVIEW, REVIEW_SAMPLE_SLUG)
    assert {k: context(project, REVIEW)[k] for k in ("tier", "namespace")} == {
        "tier": review.tier,
        "namespace": review.namespace,
    }


def test_review_is_unknown_when_review_apps_are_off(model_repo: Path) -> None:
    with (model_repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write("\nreview:\n  enabled: false\n")
    project = load_project(model_repo)
    assert REVIEW not in environment_names(project, None)
    with pytest.raises(MlgitError) as ours:
        environment_names(project, REVIEW)
    with pytest.raises(MlgitError) as deploys:
        target(project.config, REVIEW)
    assert (ours.value.message, ours.value.hint) == (deploys.value.message, deploys.value.hint)


def test_one_name_for_the_pipeline_file() -> None:
    """The renderer writes and the policies read the same file: one constant, not one per side."""
    defining = []
    for path in sorted((REPO_ROOT / "cli" / "mlgit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.Constant) and n.value == GITLAB_CI for n in ast.walk(tree)):
            defining.append(path.relative_to(REPO_ROOT).as_posix())
    assert defining == ["cli/mlgit/policy/pipeline.py"]


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
