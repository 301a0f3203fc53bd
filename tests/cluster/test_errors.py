"""Cluster failures become one clear message and exit code 1, never a traceback: RBAC for real (a
ServiceAccount token with too few rights on the real API server), contexts, credentials, and servers
that refuse connections or never answer (the only faults a real API server cannot produce on demand)."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tests.cluster.conftest import admin_context, flat, image, update_config, write_kubeconfig
from tests.cluster.kube import Kube
from tests.conftest import free_port

SKIP_SMOKE = "--skip-smoke"
AGENT_CONTEXT = "group/model:agent"  # the shape of a GitLab agent's context


def _restricted_kubeconfig(kube: Kube, namespace: str, rules: list[dict], path: Path) -> Path:
    """A kubeconfig for ServiceAccount `deployer` of `namespace`, allowed only `rules` there."""
    account = "deployer"
    kube.run("create", "serviceaccount", account, "-n", namespace)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": account}, "rules": rules}
    kube.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(role))
    subject = f"{namespace}:{account}"
    kube.run("create", "rolebinding", account, "-n", namespace, "--role", account, "--serviceaccount", subject)
    token = kube.run("create", "token", account, "-n", namespace, "--duration", "10m").stdout.strip()
    cluster = admin_context(kube.kubeconfig)["cluster"]
    return write_kubeconfig(path, {"deployer": {"cluster": cluster, "user": {"token": token}}}, "deployer")


READ_ONLY = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]


def test_rbac_denial_names_the_verb_the_resource_and_the_namespace(
    name: str,
    namespace: str,
    kube: Kube,
    mlgit: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kubeconfig = _restricted_kubeconfig(kube, namespace, READ_ONLY, tmp_path / "deployer")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert f"forbidden: cannot apply serviceaccount/{name} -n {namespace} (context deployer)" in err
    assert f'User "system:serviceaccount:{namespace}:deployer" cannot patch resource "serviceaccounts"' in err
    assert f'in the namespace "{namespace}"' in err
    assert "lack RBAC permission" in err and "Traceback" not in result.output
    assert kube.get("deployment", name, namespace) is None


def test_a_forbidden_port_forward_names_the_permission_and_the_way_around(
    name: str,
    namespace: str,
    kube: Kube,
    model_server: subprocess.Popen[bytes],
    mlgit: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Everything a deploy needs except `create pods/portforward`: the rollout passes, the smoke check cannot."""
    verbs = ["get", "list", "watch", "create", "patch", "delete"]
    # Resources named one by one: "*" would cover the pods/portforward subresource too.
    core = ["serviceaccounts", "configmaps", "services", "pods", "pods/log", "events", "secrets"]
    groups = ["apps", "networking.k8s.io", "autoscaling", "policy"]
    rules = [
        {"apiGroups": [""], "resources": core, "verbs": verbs},
        {"apiGroups": groups, "resources": ["*"], "verbs": verbs},
    ]
    kubeconfig = _restricted_kubeconfig(kube, namespace, rules, tmp_path / "deployer")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    result = mlgit("deploy", "--env", "dev", "--image", image(name))
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert f"forbidden: cannot port-forward to pod {name}-" in err
    assert "pods/portforward" in err and "MLGIT_DEPLOY_SKIP_SMOKE=1" in err
    assert "Traceback" not in result.output


def test_unreachable_cluster_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlgit: Callable[..., Result]
) -> None:
    gone = {"cluster": {"server": f"http://127.0.0.1:{free_port()}"}, "user": {"token": "x"}}
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", {"gone": gone}, "gone")))
    for args in (["deploy", "--env", "dev", "--image", image("m")], ["destroy", "--env", "dev"]):
        result = mlgit(*args)
        assert result.exit_code == 1
        assert "cannot reach the Kubernetes API server (context gone)" in flat(result.stderr)
        assert "Traceback" not in result.output
    status = mlgit("status", "--json")
    assert status.exit_code == 1 and "cannot reach" in status.stdout


def test_an_api_server_that_never_answers_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlgit: Callable[..., Result]
) -> None:
    """Accepts connections, never answers: without a request timeout a CI job would hang for ever."""
    from mlgit.cluster import client

    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        silent = {"cluster": {"server": f"http://127.0.0.1:{blackhole.getsockname()[1]}"}, "user": {"token": "x"}}
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", {"silent": silent}, "silent")))
        monkeypatch.setattr(client, "REQUEST_TIMEOUT", (1.0, 1.0))
        result = mlgit("status", "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "silent" in result.output


@pytest.fixture
def two_contexts(tmp_path: Path, cluster_kubeconfig: Path) -> dict[str, dict]:
    """The real cluster under a GitLab agent's context name, and a current context nothing answers."""
    refused = {"cluster": {"server": "http://127.0.0.1:9"}, "user": {"token": "x"}}  # discard port: refused
    return {"elsewhere": refused, AGENT_CONTEXT: admin_context(cluster_kubeconfig)}


def test_the_context_comes_from_the_flag_then_mlgit_yaml(
    name: str,
    namespace: str,
    two_contexts: dict[str, dict],
    model_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlgit: Callable[..., Result],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", two_contexts, "elsewhere")))
    current = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert current.exit_code == 1 and "(context elsewhere)" in flat(current.stderr)
    flag = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run", "--context", AGENT_CONTEXT)
    assert flag.exit_code == 0, flag.output
    unknown = mlgit("deploy", "--env", "dev", "--image", image(name), "--context", "nope")
    assert unknown.exit_code == 1
    assert "no context 'nope' in the kubeconfig" in flat(unknown.stderr)
    assert f"contexts in the kubeconfig: elsewhere, {AGENT_CONTEXT}" in flat(unknown.stderr)
    update_config(model_repo, {"environments": {"dev": {"kube_context": AGENT_CONTEXT}, "staging": {}, "prod": {}}})
    from_config = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert from_config.exit_code == 0, from_config.output
    assert mlgit("status", "--env", "dev", "--json").exit_code == 0


def test_a_kubeconfig_without_current_context_uses_its_only_context(
    name: str,
    namespace: str,
    cluster_kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlgit: Callable[..., Result],
) -> None:
    """A GitLab agent's KUBECONFIG sets no current-context."""
    agent = {AGENT_CONTEXT: admin_context(cluster_kubeconfig)}
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", agent, None)))
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 0, result.output


def test_a_kubeconfig_without_current_context_and_several_contexts_names_the_setting(
    name: str,
    two_contexts: dict[str, dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlgit: Callable[..., Result],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", two_contexts, None)))
    result = mlgit("deploy", "--env", "staging", "--image", image(name))
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "has no current context, and environments.staging.kube_context is not set" in err
    assert f"contexts in the kubeconfig: elsewhere, {AGENT_CONTEXT}" in err and "Traceback" not in result.output


def test_no_credentials_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlgit: Callable[..., Result]) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 1
    assert "no Kubernetes credentials" in flat(result.stderr)


def test_a_kubeconfig_list_with_a_missing_file_is_read_as_kubectl_reads_it(
    name: str,
    namespace: str,
    cluster_kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlgit: Callable[..., Result],
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{cluster_kubeconfig}")
    dry_run = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert dry_run.exit_code == 0, dry_run.output
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{tmp_path / 'gone'}")
    missing = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert missing.exit_code == 1 and "no kubeconfig file exists among" in flat(missing.stderr)
    assert "Traceback" not in missing.output
