"""The smoke check against a real `mlgit serve` that requires an API key: it presents MLGIT_SMOKE_TOKEN,
says which variable is missing when the server refuses it, and without credentials (deploy, auth mode oidc
and no token) it checks readiness only and says the sample was not sent."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlgit.config.load import load_project
from mlgit.main import app
from mlgit.smoke import HttpEndpoint, smoke_check
from tests.conftest import free_port

runner = CliRunner()
KEY = secrets.token_hex(16)


@pytest.fixture
def url(model_repo: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "MLGIT_SERVING_AUTH_MODE": "api-key", "MLGIT_SERVING_API_KEYS": KEY}
    command = [sys.executable, "-m", "mlgit", "serve", str(model_repo), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_token_opens_the_server(model_repo: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGIT_SMOKE_TOKEN", KEY)
    result = runner.invoke(app, ["smoke", "--url", url, "--timeout", "60", str(model_repo)])
    assert result.exit_code == 0, result.output
    assert "answered the sample as expected" in result.stdout


def test_without_the_token_the_refusal_names_the_variable(
    model_repo: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLGIT_SMOKE_TOKEN", raising=False)
    result = runner.invoke(app, ["smoke", "--url", url, "--timeout", "60", str(model_repo)])
    assert result.exit_code == 1
    err = " ".join(result.stderr.split())
    assert "the server requires authentication and refused the check (HTTP 401" in err
    assert "set MLGIT_SMOKE_TOKEN" in err and "Traceback" not in result.output


def test_without_credentials_only_readiness_is_checked(model_repo: Path, url: str) -> None:
    endpoint = HttpEndpoint(url)
    endpoint.unauthenticated = "auth mode oidc and no MLGIT_SMOKE_TOKEN"
    try:
        result = smoke_check(endpoint, load_project(model_repo, warn=False), timeout=60)
    finally:
        endpoint.close()
    assert result.latency_ms is None
    assert str(result) == "server is ready; the sample was not sent: auth mode oidc and no MLGIT_SMOKE_TOKEN"
