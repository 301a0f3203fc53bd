"""`mlgit manifests build`: prints the built YAML; user mistakes exit 1 with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from mlgit.main import app
from mlgit.manifests.kustomize import KUBECTL_ENV

runner = CliRunner()


def test_build_prints_the_manifests(model_repo: Path) -> None:
    result = runner.invoke(app, ["manifests", "build", "--env", "dev", str(model_repo)])
    assert result.exit_code == 0, result.output
    kinds = [d["kind"] for d in YAML(typ="safe", pure=True).load_all(result.stdout) if d]
    assert {"Deployment", "Service", "Ingress", "ConfigMap", "ServiceAccount", "NetworkPolicy"} <= set(kinds)


def test_build_review_app(model_repo: Path) -> None:
    args = ["manifests", "build", "--env", "review", "--slug", "mr-1", "--image", "r.example.com/x:mr-1"]
    result = runner.invoke(app, [*args, str(model_repo)])
    assert result.exit_code == 0, result.output
    assert "host: mr-1.linear.review.models.example.com" in result.stdout


def test_missing_kubectl_exits_1_with_the_hint(model_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KUBECTL_ENV, str(model_repo / "no-kubectl"))
    result = runner.invoke(app, ["manifests", "build", "--env", "dev", str(model_repo)])
    assert result.exit_code == 1
    assert "is not an executable file" in result.output and "install kubectl" in result.output


@pytest.mark.parametrize(("args", "message"), [(["--env", "qa"], "unknown environment"), (["--env", "review"], "slug")])
def test_bad_environment_exits_1(model_repo: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["manifests", "build", *args, str(model_repo)])
    assert result.exit_code == 1
    assert message in result.output
