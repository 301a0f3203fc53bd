"""A model repository whose staging runs a canary, for the analysis tests that need no real Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgit import render
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.manifests.canary_state import write_canary

CANARY_IMAGE = "registry.example.com/ml/linear@sha256:" + "b" * 64


@pytest.fixture
def canary_repo(model_repo: Path) -> Path:
    """A canary of CANARY_IMAGE running in staging at 10% (its stable unpinned); prod has no canary section."""
    doc = read_yaml(model_repo / "mlgit.yaml")
    doc["environments"] = {"dev": {}, "staging": {"canary": {}}, "prod": {}}
    (model_repo / "mlgit.yaml").write_text(dump_yaml(doc), encoding="utf-8")
    render.render(load_project(model_repo, warn=False))
    write_canary(model_repo, "staging", canary=CANARY_IMAGE, weight=10, replicas=1)
    return model_repo
