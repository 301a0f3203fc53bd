"""`mlgit manifests diff --base`: the whole pin file at the base against the working tree's, canary included."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mlgit import render
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app
from mlgit.manifests.canary_state import write_canary
from mlgit.manifests.pins import write_pin
from tests.promote.support import IMAGE_A, IMAGE_B, Remote


def _diff(remote: Remote, base: str) -> str:
    result = CliRunner().invoke(app, ["manifests", "diff", "--env", "staging", "--base", base, str(remote.repo)])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_pinning_a_canary_and_its_weight_show_in_the_diff(model_repo: Path, tmp_path: Path) -> None:
    doc = read_yaml(model_repo / "mlgit.yaml")
    gateway = {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateways"}}
    doc["environments"] = {"dev": {}, "staging": {"canary": {}, "exposure": gateway}, "prod": {}}
    (model_repo / "mlgit.yaml").write_text(dump_yaml(doc), encoding="utf-8")
    render.render(load_project(model_repo, warn=False))
    write_pin(model_repo, "staging", IMAGE_A)
    remote = Remote(model_repo, tmp_path / "origin.git")
    base = remote.commit("staging pinned, no canary")
    assert _diff(remote, base) == "the rendered manifests of staging do not change\n"
    write_canary(model_repo, "staging", canary=IMAGE_B, weight=10, replicas=2)
    diff = _diff(remote, base)
    assert f"+        image: {IMAGE_B}" in diff  # the canary Deployment's image
    assert "+  replicas: 2" in diff
    assert '+  canary-weight: "10"' in diff and "+      weight: 10" in diff  # the split ConfigMap and the route
    assert f"-        image: {IMAGE_A}" not in diff  # the stable is as it was
