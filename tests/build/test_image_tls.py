"""The model image serving HTTPS itself, as an OpenShift re-encrypt route runs it (a service-serving
certificate mounted, MLGIT_SERVING_TLS_CERT_FILE/KEY_FILE set), on the real Docker engine: the image's
HEALTHCHECK must speak TLS, and deploy's smoke check must too. The smoke check's port-forward is replaced by
a plain TCP connection to the container (no cluster here runs the pod); the TLS and HTTP code is deploy's."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mlgit.cluster.smoke import PortForwardEndpoint
from mlgit.config.load import load_project
from mlgit.smoke import smoke_check
from tests.conftest import free_port
from tests.serving_runtime.test_hostile_connections import _self_signed

pytestmark = pytest.mark.integration
MOUNT = "/var/run/secrets/serving-cert"


def test_the_image_healthcheck_and_the_smoke_check_speak_tls(
    docker_client: Any, iris_image: str, iris_repo: Path, tmp_path: Path
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    for path in (tmp_path, cert_file, key_file):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the kubelet mounts a Secret readable by the pod
    project = load_project(iris_repo)
    port = free_port()
    container = docker_client.containers.run(
        iris_image,
        detach=True,
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
        cap_drop=["ALL"],
        environment={
            "MLGIT_SERVING_TLS_CERT_FILE": f"{MOUNT}/{cert_file.name}",
            "MLGIT_SERVING_TLS_KEY_FILE": f"{MOUNT}/{key_file.name}",
        },
        volumes={str(tmp_path): {"bind": MOUNT, "mode": "ro"}},
        ports={"8080/tcp": ("127.0.0.1", port)},
    )
    try:
        deadline = time.monotonic() + 90  # start-period 30 s, interval 10 s: the first probes decide
        while True:
            container.reload()
            health = container.attrs["State"]["Health"]
            if health["Status"] == "healthy":
                break
            assert health["Status"] != "unhealthy", health["Log"][-1:]
            assert time.monotonic() < deadline, f"never healthy: {health}"
            time.sleep(1)

        endpoint = PortForwardEndpoint(None, "ns", "pod", 8080, tls=True)  # type: ignore[arg-type]
        endpoint._socket = lambda: socket.create_connection(("127.0.0.1", port))  # type: ignore[method-assign]
        result = smoke_check(endpoint, project, timeout=30)
        assert result.latency_ms > 0, result
    finally:
        container.remove(force=True)
