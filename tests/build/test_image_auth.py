"""Authentication inside the model image, on the real Docker engine: what tests/serving_runtime proves in
process must hold in the container the Deployment runs (its installed dependencies, read-only root, uid 10001).

api-key: the key directory bind-mounted read-only where the Deployment mounts the Secret, as `mlgit serve
--docker` does; a key added to it is accepted without a restart (the kubelet updates a mounted Secret in place).
oidc: the container on the host network reaches an identity provider served by this test (never a real one)."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from mlgit.build.run import Published, start_container, wait_ready
from mlgit.config.load import load_project
from tests.conftest import free_port
from tests.serving_runtime.test_auth_oidc import AUDIENCE, SCOPE, IdentityProvider

pytestmark = pytest.mark.integration
ROWS = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)


def _infer(port: int, headers: dict[str, str] | None) -> np.ndarray:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    item = triton.InferInput("input", list(ROWS.shape), "FP32")
    item.set_data_from_numpy(ROWS)
    return client.infer("iris-classifier", [item], headers=headers).as_numpy("label")


@contextlib.contextmanager
def _removed(container: Any) -> Iterator[Any]:
    try:
        yield container
    finally:
        container.remove(force=True)


def test_api_keys_in_the_image_with_rotation_through_the_mounted_directory(
    docker_client: Any, iris_image: str, iris_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "api-keys"
    keys.mkdir()
    first, second = secrets.token_hex(32), secrets.token_hex(32)
    (keys / "key-1").write_text(first)
    keys.chmod(0o755)
    (keys / "key-1").chmod(0o644)
    monkeypatch.setenv("MLGIT_SERVING_AUTH_MODE", "api-key")
    monkeypatch.setenv("MLGIT_SERVING_API_KEYS_DIR", str(keys))
    config = load_project(iris_repo).config
    port = free_port()
    with _removed(start_container(docker_client, iris_image, config, Published("127.0.0.1", port))) as container:
        wait_ready(container, f"http://127.0.0.1:{port}", timeout=120)  # health stays open for probes
        with pytest.raises(InferenceServerException) as refused:
            _infer(port, None)
        assert "401" in str(refused.value.status()) or "credential" in str(refused.value).lower()
        reply = httpx.get(f"http://127.0.0.1:{port}/v2/models/iris-classifier", trust_env=False)
        assert reply.status_code == 401 and reply.headers["www-authenticate"].startswith("Bearer")
        assert _infer(port, {"Authorization": f"Bearer {first}"}).shape == (1,)

        (keys / "key-2").write_text(second)  # rotation: a second key, picked up without a restart
        (keys / "key-2").chmod(0o644)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(InferenceServerException):
                _infer(port, {"Authorization": f"Bearer {second}"})
                break
            assert time.monotonic() < deadline, "the second key was never accepted"
            time.sleep(0.5)
        assert _infer(port, {"Authorization": f"Bearer {first}"}).shape == (1,)  # both valid during rotation
        logs = container.logs().decode()
        assert first not in logs and second not in logs


def test_oidc_tokens_in_the_image(docker_client: Any, iris_image: str, iris_repo: Path) -> None:
    idp = IdentityProvider()
    try:
        idp.add_key("rsa-1")
        config = load_project(iris_repo).config
        port = free_port()
        container = docker_client.containers.run(
            iris_image,
            detach=True,
            user="10001:10001",
            read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_mode="host",  # to reach the test's identity provider on 127.0.0.1
            environment={
                "MLGIT_SERVING_HOST": "127.0.0.1",
                "MLGIT_SERVING_PORT": str(port),
                "MLGIT_SERVING_DRAIN_SECONDS": str(config.serving.drain_seconds),
                "MLGIT_SERVING_AUTH_MODE": "oidc",
                "MLGIT_SERVING_OIDC_ISSUER": idp.issuer,
                "MLGIT_SERVING_OIDC_AUDIENCE": AUDIENCE,
                "MLGIT_SERVING_OIDC_REQUIRED_SCOPES": SCOPE,
            },
        )
        with _removed(container):
            wait_ready(container, f"http://127.0.0.1:{port}", timeout=120)
            assert _infer(port, {"Authorization": f"Bearer {idp.token()}"}).shape == (1,)
            with pytest.raises(InferenceServerException):
                _infer(port, {"Authorization": f"Bearer {idp.token(aud='someone-else')}"})
            narrow = httpx.get(
                f"http://127.0.0.1:{port}/v2/models/iris-classifier",
                headers={"Authorization": f"Bearer {idp.token(scope='openid')}"},
                trust_env=False,
            )
            assert narrow.status_code == 403, narrow.text
            assert 'error="insufficient_scope"' in narrow.headers["www-authenticate"]
    finally:
        idp.close()
