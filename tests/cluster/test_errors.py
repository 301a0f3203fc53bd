"""Cluster failures become one clear message and exit code 1, never a traceback (API server emulator:
tests/cluster/emulator.py, an emulator, not a cluster)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from kmock import KubernetesError
from typer.testing import Result

from tests.cluster.conftest import AGENT_CONTEXT, IMAGE, InProcessModel, flat, write_kubeconfig
from tests.cluster.emulator import ApiServer
from tests.conftest import free_port


def test_rbac_denial_is_a_clear_error(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    message = 'deployments.apps "linear" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch'
    emulator["patch", re.compile(r".*/deployments/linear$")] << KubernetesError(403, "Forbidden", message)
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "forbidden: cannot apply deployment.apps/linear -n linear-dev (context emulator)" in err
    assert "lack RBAC permission" in err and "Traceback" not in result.output
    assert emulator.get("apps/v1", "Deployment", "linear", namespace) is None


def test_unreachable_cluster_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_repo: Path, mlgit: Callable[..., Result]
) -> None:
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"gone": f"http://127.0.0.1:{port}"}, "gone")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for args in (["deploy", "--env", "dev", "--image", IMAGE], ["destroy", "--env", "dev"]):
        result = mlgit(*args)
        assert result.exit_code == 1
        assert "cannot reach the Kubernetes API server (context gone)" in flat(result.stderr)
        assert "Traceback" not in result.output
    status = mlgit("status", "--json")
    assert status.exit_code == 1 and "cannot reach" in status.stdout


def test_an_api_server_that_never_answers_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_repo: Path, mlgit: Callable[..., Result]
) -> None:
    """Accepts connections, never answers: without a request timeout a CI job would hang for ever."""
    from mlgit.cluster import client

    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        port = blackhole.getsockname()[1]
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"silent": f"http://127.0.0.1:{port}"}, "silent")
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.setattr(client, "REQUEST_TIMEOUT", (1.0, 1.0))
        result = mlgit("status", "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "silent" in result.output


def test_contexts_come_from_the_flag_then_mlgit_yaml(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    unknown = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--context", "nope")
    assert unknown.exit_code == 1
    assert "no context 'nope' in the kubeconfig" in flat(unknown.stderr)
    assert f"known contexts: emulator, {AGENT_CONTEXT}" in flat(unknown.stderr)
    agent = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--context", AGENT_CONTEXT, "--dry-run")
    assert agent.exit_code == 0, agent.output


def test_no_credentials_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlgit: Callable[..., Result]) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 1
    assert "no Kubernetes credentials" in flat(result.stderr)


def test_a_forbidden_port_forward_names_the_permission_and_the_way_around(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kubernetes client reports a refused websocket upgrade as status 0 with the 403 in its text."""
    from kubernetes import client as k8s

    from mlgit.cluster import smoke
    from mlgit.errors import MlgitError

    def refuse(*args: object, **kwargs: object) -> None:
        raise k8s.ApiException(status=0, reason="Handshake status 403 Forbidden")

    monkeypatch.setattr(smoke, "portforward", refuse)
    cluster = type("FakeCluster", (), {"api_client": k8s.ApiClient(), "context": "ml/model:agent"})()
    endpoint = smoke.PortForwardEndpoint(cluster, "linear-dev", "linear-abc", 8080)  # type: ignore[arg-type]
    with pytest.raises(MlgitError) as caught:
        endpoint.request("GET", "/v2/health/ready")
    assert "forbidden: cannot port-forward to pod linear-abc" in caught.value.message
    assert "pods/portforward" in (caught.value.hint or "") and "MLGIT_DEPLOY_SKIP_SMOKE=1" in (caught.value.hint or "")
