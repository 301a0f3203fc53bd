"""`mlgit render` never deletes an environment's overlay (and its image pin) unasked; `--prune` does."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from mlgit.main import app
from mlgit.manifests.pins import read_pin, write_pin

runner = CliRunner()
DIGEST_REF = "registry.example.com/ml/linear@sha256:" + "b" * 64


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _only_qa(repo: Path) -> None:
    with (repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write("environments:\n  qa: {}\n")


def test_render_refuses_to_drop_environments_and_names_their_pins(model_repo: Path) -> None:
    write_pin(model_repo, "prod", DIGEST_REF)
    _only_qa(model_repo)
    before = _snapshot(model_repo)
    dev_files = sum(path.is_file() for path in (model_repo / "deploy/overlays/dev").rglob("*"))
    result = runner.invoke(app, ["render", str(model_repo)])
    assert result.exit_code == 1, result.output
    assert "mlgit.yaml no longer declares dev, prod, staging" in result.stderr
    assert re.search(rf"deploy/overlays/prod/ pins {re.escape(DIGEST_REF)} \(\d+ files\)", result.stderr)
    assert f"deploy/overlays/dev/ ({dev_files} files, no image pinned)" in result.stderr
    assert "mlgit render --prune" in result.stderr
    assert _snapshot(model_repo) == before, "a refused render writes nothing, not even the new qa overlay"


def test_check_points_at_prune(model_repo: Path) -> None:
    write_pin(model_repo, "prod", DIGEST_REF)
    _only_qa(model_repo)
    check = runner.invoke(app, ["render", str(model_repo), "--check"])
    assert check.exit_code == 1
    assert f"dropped environment: deploy/overlays/prod/ pins {DIGEST_REF}" in check.stderr
    assert "run `mlgit render --prune` and commit" in check.stderr
    report = runner.invoke(app, ["render", str(model_repo), "--check", "--json"])
    assert {"environment": "prod", "pin": DIGEST_REF} in json.loads(report.stdout)["dropped_environments"]


def test_prune_drops_them(model_repo: Path) -> None:
    write_pin(model_repo, "prod", DIGEST_REF)
    _only_qa(model_repo)
    result = runner.invoke(app, ["render", str(model_repo), "--prune"])
    assert result.exit_code == 0, result.output
    assert "removed deploy/overlays/prod/image/kustomization.yaml" in result.stdout
    overlays = sorted(p.name for p in (model_repo / "deploy" / "overlays").iterdir())
    assert overlays == ["qa", "review"]
    assert read_pin(model_repo, "qa") is None
    assert runner.invoke(app, ["render", str(model_repo), "--check"]).exit_code == 0


def test_disabling_review_apps_is_a_dropped_environment_too(model_repo: Path) -> None:
    with (model_repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write("review:\n  enabled: false\n")
    result = runner.invoke(app, ["render", str(model_repo)])
    assert result.exit_code == 1 and "no longer declares review" in result.stderr


def test_stale_files_inside_a_kept_overlay_are_still_removed(model_repo: Path) -> None:
    # Turning autoscaling off removes prod's autoscaling.yaml: derived from mlgit.yaml, not state.
    with (model_repo / "mlgit.yaml").open("a", encoding="utf-8") as handle:
        handle.write("environments:\n  dev: {}\n  staging: {}\n  prod: {replicas: 3, autoscaling: {enabled: false}}\n")
    result = runner.invoke(app, ["render", str(model_repo)])
    assert result.exit_code == 0, result.output
    assert "removed deploy/overlays/prod/autoscaling.yaml" in result.stdout
    assert read_pin(model_repo, "prod") is None


def test_prune_with_check_is_a_usage_error(model_repo: Path) -> None:
    assert runner.invoke(app, ["render", str(model_repo), "--check", "--prune"]).exit_code == 2
