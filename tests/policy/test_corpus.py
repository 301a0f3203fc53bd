"""Planted violations are caught by exactly the right policy, on fixture and on generated manifests;
every example's generated manifests and pipeline pass with zero findings."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlgit.config.load import load_project
from mlgit.policy.check import run_check
from mlgit.policy.engine import PolicySet
from mlgit.policy.inputs import environment_input, environment_names, pipeline_input
from mlgit.policy.settings import PlatformSettings
from tests.conftest import EXAMPLES
from tests.policy import environments
from tests.policy.planted import PIPELINE_PLANTS, PLANTS, Plant

DIGEST = environments.DIGEST
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")


def _policy_ids(policies: PolicySet, document: dict[str, Any]) -> set[str]:
    return {v.policy.id for v in policies.evaluate(document)}


def _image(repo: Path) -> str:
    return f"{load_project(repo).config.image.repository}@{DIGEST}"


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlgit.scaffold import InitOptions, init_repository

    return init_repository(InitOptions(target=tmp_path_factory.mktemp("examples") / "iris", example="iris-classifier"))


@pytest.mark.parametrize(
    ("plant", "device"),
    # The RES-002 plant gives a CPU model a GPU: it has no GPU-model counterpart.
    [(p, d) for p in PLANTS for d in ("cpu", "gpu") if not (d == "gpu" and p.policy == "MLGIT-RES-002")],
    ids=lambda v: f"{v.policy}:{v.description}" if isinstance(v, Plant) else v,
)
def test_planted_in_fixture_environment(policies: PolicySet, plant: Plant, device: str) -> None:
    document = environments.environment("prod", "production", device)
    assert _policy_ids(policies, document) == set()
    plant.change(document)
    assert _policy_ids(policies, document) == {plant.policy}


@pytest.mark.parametrize("plant", PIPELINE_PLANTS, ids=lambda p: f"{p.policy}:{p.description}")
def test_planted_in_fixture_pipeline(policies: PolicySet, plant: Plant) -> None:
    document = environments.pipeline()
    assert _policy_ids(policies, document) == set()
    plant.change(document)
    assert _policy_ids(policies, document) == {plant.policy}


@needs_kubectl
def test_planted_in_generated_manifests(policies: PolicySet, iris: Path) -> None:
    project = load_project(iris)
    generated = environment_input(project, "prod", _image(iris)).document
    pipeline, _ = pipeline_input(project)
    cases: list[tuple[Plant, dict[str, Any]]] = [(p, generated) for p in PLANTS]
    cases += [(p, pipeline.document) for p in PIPELINE_PLANTS]
    missed = {}
    for plant, base in cases:
        document = copy.deepcopy(base)
        plant.change(document)
        found = _policy_ids(policies, document)
        if found != {plant.policy}:
            missed[f"{plant.policy}: {plant.description}"] = found
    assert missed == {}


def _check_clean(repo: Path) -> None:
    project = load_project(repo)
    result = run_check(
        project, environment_names(project, None), pipeline=True, today=dt.date.today(),
        platform=PlatformSettings(), image=_image(repo),
    )  # fmt: skip
    assert "pipeline" in result.input_names
    assert [f.message for f in result.findings] == []


@needs_kubectl
@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_pass(example_repo: Callable[[str], Path], example: str) -> None:
    _check_clean(example_repo(example))


@needs_kubectl
def test_fresh_model_repo_passes(model_repo: Path) -> None:
    _check_clean(model_repo)
