"""MLGIT-SEC-003 end to end: a production environment that mlgit.yaml leaves open is denied, and a waiver
(the only way to keep it open) turns the denial into a reported skip."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
runner = CliRunner()


def _configure(repo: Path, **sections: object) -> None:
    path = repo / "mlgit.yaml"
    document = read_yaml(path)
    for key, value in sections.items():
        document[key] = {**document.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(dump_yaml(document), encoding="utf-8")
    assert runner.invoke(app, ["render", str(repo)]).exit_code == 0


def _check(repo: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", "check", str(repo)])
    return result.exit_code, " ".join(result.output.split())


def test_production_is_authenticated_by_default(model_repo: Path) -> None:
    code, output = _check(model_repo)
    assert "MLGIT-SEC-003" not in output, output
    assert code == 0, output


def test_an_open_production_endpoint_is_denied_until_waived(model_repo: Path) -> None:
    _configure(model_repo, serving={"auth": {"mode": "none"}})
    code, output = _check(model_repo)
    assert code == 3, output
    assert "DENY MLGIT-SEC-003 Deployment linear-prod/linear" in output
    assert "accepts unauthenticated requests in production" in output
    assert "Deployment linear-dev" not in output  # open is fine outside production
    expires = dt.date.today() + dt.timedelta(days=30)
    waiver = {
        "policy": "MLGIT-SEC-003",
        "resource": "Deployment/*",
        "environment": "prod",
        "reason": "a public demo model, reviewed by the platform team",
        "expires": expires.isoformat(),
    }
    _configure(model_repo, policy={"waivers": [waiver]})
    code, output = _check(model_repo)
    assert code == 0, output
    assert "SKIP MLGIT-SEC-003 Deployment linear-prod/linear" in output
    assert f"waived until {expires}: a public demo model" in output
