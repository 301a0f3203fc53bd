"""MLGIT_DEPLOY_SKIP_SMOKE: turning the smoke check off from the environment (a CI/CD variable), for
clusters where the deploy credentials may not open `pods/portforward`. The `--skip-smoke` flag wins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tests.cluster.conftest import IMAGE, InProcessModel, flat
from tests.cluster.emulator import ApiServer


def _dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_the_variable_skips_the_smoke_check_and_still_records_the_image(
    value: str,
    emulator: ApiServer,
    namespace: str,
    mlgit: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No smoke_endpoint fixture: a smoke check would try a real port-forward, which the emulator refuses.
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", value)
    dotenv = tmp_path / "deploy.env"
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--dotenv", str(dotenv))
    assert result.exit_code == 0, result.output
    assert f"smoke check skipped (MLGIT_DEPLOY_SKIP_SMOKE={value})" in flat(result.stdout)
    assert "deployed dev:" in flat(result.stdout)
    assert _dotenv(dotenv) == {"MLGIT_DEPLOYED_IMAGE": IMAGE}


@pytest.mark.parametrize("value", ["0", "false", ""])
def test_a_false_value_runs_the_smoke_check(
    value: str,
    emulator: ApiServer,
    namespace: str,
    smoke_endpoint: InProcessModel,
    mlgit: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", value)
    dotenv = tmp_path / "deploy.env"
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--dotenv", str(dotenv))
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stdout
    assert smoke_endpoint.requests == [("GET", "/v2/models/linear/ready"), ("POST", "/v2/models/linear/infer")]
    assert set(_dotenv(dotenv)) == {"MLGIT_DEPLOYED_IMAGE", "MLGIT_SMOKE_LATENCY_MS"}


def test_the_flag_wins_over_the_variable(
    emulator: ApiServer, namespace: str, mlgit: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", "0")
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--skip-smoke")
    assert result.exit_code == 0, result.output
    assert "smoke check skipped (--skip-smoke)" in flat(result.stdout)


def test_a_value_that_is_neither_yes_nor_no_fails_before_touching_the_cluster(
    emulator: ApiServer, namespace: str, mlgit: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGIT_DEPLOY_SKIP_SMOKE", "sometimes")
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 1
    assert "MLGIT_DEPLOY_SKIP_SMOKE='sometimes' is not a yes/no value" in flat(result.stderr)
    assert emulator.get("apps/v1", "Deployment", "linear", namespace) is None
