"""MLGIT_DEPLOY_SKIP_SMOKE: turning the smoke check off from the environment (a CI/CD variable), for
clusters where the deploy credentials may not open `pods/portforward`. The `--skip-smoke` flag wins."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tests.cluster.conftest import flat, image
from tests.cluster.kube import Kube


def _dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_the_variable_skips_the_smoke_check_and_still_records_the_image(
    value: str,
    name: str,
    namespace: str,
    mlgit: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No model_server: a smoke check would reach a port-forward with nothing behind it, and fail.
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", value)
    dotenv = tmp_path / "deploy.env"
    result = mlgit("deploy", "--env", "dev", "--image", image(name), "--dotenv", str(dotenv))
    assert result.exit_code == 0, result.output
    assert f"smoke check skipped (MLGIT_DEPLOY_SKIP_SMOKE={value})" in flat(result.stdout)
    assert "deployed dev:" in flat(result.stdout)
    assert _dotenv(dotenv) == {"MLGIT_DEPLOYED_IMAGE": image(name)}


@pytest.mark.parametrize("value", ["0", "false", ""])
def test_a_false_value_runs_the_smoke_check(
    value: str,
    name: str,
    namespace: str,
    model_server: subprocess.Popen[bytes],
    mlgit: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", value)
    dotenv = tmp_path / "deploy.env"
    result = mlgit("deploy", "--env", "dev", "--image", image(name), "--dotenv", str(dotenv))
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stdout
    assert "answered the sample as expected" in flat(result.stdout)
    assert set(_dotenv(dotenv)) == {"MLGIT_DEPLOYED_IMAGE", "MLGIT_SMOKE_LATENCY_MS"}


def test_the_flag_wins_over_the_variable(
    name: str, namespace: str, mlgit: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", "0")
    result = mlgit("deploy", "--env", "dev", "--image", image(name), "--skip-smoke")
    assert result.exit_code == 0, result.output
    assert "smoke check skipped (--skip-smoke)" in flat(result.stdout)


def test_a_value_that_is_neither_yes_nor_no_fails_before_touching_the_cluster(
    name: str, namespace: str, mlgit: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, kube: Kube
) -> None:
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", "sometimes")
    result = mlgit("deploy", "--env", "dev", "--image", image(name))
    assert result.exit_code == 1
    assert "MLGIT_DEPLOY_SKIP_SMOKE='sometimes' is not a yes/no value" in flat(result.stderr)
    assert kube.get("deployment", name, namespace) is None
