"""`mlgit deploy` refuses what it must refuse before it connects to any cluster."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mlgit.main import app


def test_staging_and_production_deploy_only_digests(model_repo: Path) -> None:
    for env in ("staging", "prod"):
        result = CliRunner().invoke(
            app, ["deploy", "--env", env, "--image", "registry.example.com/linear:v1", str(model_repo)]
        )
        assert result.exit_code == 1
        message = " ".join(result.stderr.split())
        assert "deploys only digest-pinned images" in message and "REF@sha256:DIGEST" in message


def test_no_image_pinned_names_the_way_out(model_repo: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "--env", "prod", str(model_repo)])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "prod" in message and "--image" in message
