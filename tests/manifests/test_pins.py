"""The image pin: one small file per environment, changed alone, and invisible to `render --check`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from mlgit.main import app
from mlgit.manifests.build import build_env
from mlgit.manifests.pins import pin_path, read_pin, write_pin
from tests.manifests.cases import DIGEST


def _snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.parts
    }


def test_write_pin_changes_exactly_one_file(model_repo: Path) -> None:
    before = _snapshot(model_repo)
    ref = f"registry.example.com/ml/linear@{DIGEST}"
    path = write_pin(model_repo, "staging", ref)
    after = _snapshot(model_repo)
    changed = {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)}
    assert changed == {"deploy/overlays/staging/image/kustomization.yaml"}
    assert path == pin_path(model_repo, "staging")
    assert read_pin(model_repo, "staging") == ref
    assert read_pin(model_repo, "prod") is None
    result = CliRunner().invoke(app, ["render", str(model_repo), "--check"])
    assert result.exit_code == 0, result.output
    (deployment,) = [o for o in build_env(load_project(model_repo), "staging") if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ref


def test_write_pin_keeps_comments_and_replaces_a_previous_pin(model_repo: Path) -> None:
    write_pin(model_repo, "prod", f"registry.example.com/ml/linear:v1@{DIGEST}")
    newer = "sha256:" + "2" * 64
    write_pin(model_repo, "prod", f"registry.example.com/ml/linear@{newer}")
    text = pin_path(model_repo, "prod").read_text(encoding="utf-8")
    assert text.startswith("# The image the prod environment runs.")
    assert "unpinned" not in text.split("kind: Component", 1)[1]
    assert read_pin(model_repo, "prod") == f"registry.example.com/ml/linear@{newer}"


def test_unpinned_placeholder_is_explicit(model_repo: Path) -> None:
    (deployment,) = [o for o in build_env(load_project(model_repo), "dev") if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/ml/linear:unpinned"


@pytest.mark.parametrize("ref", ["registry.example.com/ml/linear:v1", "registry.example.com/ml/linear@sha256:abc"])
def test_write_pin_needs_a_digest(model_repo: Path, ref: str) -> None:
    with pytest.raises(MlgitError, match="pinned by digest"):
        write_pin(model_repo, "dev", ref)


def test_pin_of_a_missing_overlay_says_to_render(model_repo: Path) -> None:
    with pytest.raises(MlgitError, match="not found") as caught:
        read_pin(model_repo, "qa")
    assert caught.value.hint and "mlgit render" in caught.value.hint
