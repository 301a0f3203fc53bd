"""`mlgit analyze`'s user errors: exit 1 naming what to fix, before any query (no Prometheus needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.main import app
from mlgit.manifests.canary_state import write_canary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "prod"], "environment prod runs no canary: environments.prod.canary is not set"),
        (["--env", "qa"], "unknown environment 'qa'"),
        (["--env", "staging"], "no Prometheus to ask: pass --prometheus URL or set monitoring.prometheus_url"),
        (["--env", "staging", "--prometheus", "http://p:9090", "--window", "10 min"],
         "--window: '10 min' is not a Prometheus duration"),
    ],
)  # fmt: skip
def test_user_errors_exit_1(canary_repo: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["analyze", *args, str(canary_repo)])
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def test_a_mirror_only_canary_is_analysed(canary_repo: Path) -> None:
    """Weight 0 with canary pods (shadow traffic only) is a running canary: analyze goes on to ask Prometheus
    (here: none configured) instead of reporting nothing to analyze."""
    write_canary(canary_repo, "staging", weight=0, replicas=1)
    result = CliRunner().invoke(app, ["analyze", "--env", "staging", str(canary_repo)])
    assert result.exit_code == 1, result.output
    assert "no Prometheus to ask" in result.stderr
