"""`mlgit serve` with authentication: the runtime's MLGIT_SERVING_* auth variables, in process and in Docker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlgit.build.run import container_settings
from mlgit.config.auth import API_KEYS_DIR
from mlgit.config.load import load_project
from mlgit.errors import MlgitError
from tests.conftest import free_port

KEY = "0123456789abcdef0123456789abcdef"


def _serve(repo: Path, port: int, **env: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLGIT_SERVING_")}
    return subprocess.Popen(
        [sys.executable, "-m", "mlgit", "serve", str(repo), "--port", str(port)],
        env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLGIT_SERVING_AUTH_MODE": "api-key"}, "MLGIT_SERVING_AUTH_MODE=api-key needs at least one API key"),
        ({"MLGIT_SERVING_AUTH_MODE": "oidc"}, "needs MLGIT_SERVING_OIDC_ISSUER and MLGIT_SERVING_OIDC_AUDIENCE"),
        ({"MLGIT_SERVING_AUTH_MODE": "apikey"}, "MLGIT_SERVING_AUTH_MODE: Input should be 'none', 'api-key' or"),
        ({"MLGIT_SERVING_OIDC_REQUIRED_CLAIMS": "groups=ml"}, 'parsing value for field "oidc_required_claims"'),
    ],
)
def test_unusable_auth_settings_are_a_clear_user_error(model_repo: Path, env: dict[str, str], message: str) -> None:
    pytest.importorskip("mlgit_serving", reason="the serving runtime (pip install ./serving_runtime) is needed")
    proc = _serve(model_repo, free_port(), **env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, output
    assert message in output and "Traceback" not in output


def test_serve_with_an_api_key(model_repo: Path) -> None:
    pytest.importorskip("mlgit_serving", reason="the serving runtime (pip install ./serving_runtime) is needed")
    port = free_port()
    proc = _serve(model_repo, port, MLGIT_SERVING_AUTH_MODE="api-key", MLGIT_SERVING_API_KEYS=KEY)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        sample = {"inputs": json.loads((model_repo / "model" / "sample.json").read_text())["inputs"]}
        assert httpx.post(f"{base}/v2/models/linear/infer", json=sample, timeout=5).status_code == 401
        headers = {"Authorization": f"Bearer {KEY}"}
        assert httpx.post(f"{base}/v2/models/linear/infer", json=sample, headers=headers, timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert '-H "Authorization: Bearer $KEY"' in output and KEY not in output


def test_docker_gets_the_auth_settings_and_the_key_directory(model_repo: Path, tmp_path: Path) -> None:
    config = load_project(model_repo).config
    environ = {
        "MLGIT_SERVING_AUTH_MODE": "api-key",
        "MLGIT_SERVING_API_KEYS_DIR": str(tmp_path),
        "MLGIT_SERVING_OIDC_LEEWAY_SECONDS": "30",
        "MLGIT_SERVING_DOCS": "false",
        "MLGIT_SERVING_PORT": "1",  # the container's own settings win
        "MLGIT_SERVING_HOST": "127.0.0.1",
        "MLGIT_SERVING_TLS_CERT_FILE": "/nowhere/cert.pem",
        "HOME": "/root",
    }
    environment, volumes = container_settings(config, environ)
    assert environment == {
        "MLGIT_SERVING_AUTH_MODE": "api-key",
        "MLGIT_SERVING_API_KEYS_DIR": API_KEYS_DIR,
        "MLGIT_SERVING_OIDC_LEEWAY_SECONDS": "30",
        "MLGIT_SERVING_DOCS": "false",
        "MLGIT_SERVING_PORT": str(config.serving.port),
        "MLGIT_SERVING_DRAIN_SECONDS": str(config.serving.drain_seconds),
    }
    assert volumes == {str(tmp_path.resolve()): {"bind": API_KEYS_DIR, "mode": "ro"}}
    with pytest.raises(MlgitError, match="MLGIT_SERVING_API_KEYS_DIR=/nowhere is not a directory"):
        container_settings(config, {"MLGIT_SERVING_API_KEYS_DIR": "/nowhere"})
