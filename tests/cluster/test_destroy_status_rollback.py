"""`mlgit destroy`, `status` and `rollback` against the API server emulator (an emulator, not a cluster:
tests/cluster/emulator.py), with the Deployment controller stand-in of tests/cluster/controller.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from mlgit.manifests.pins import write_pin
from tests.cluster.conftest import IMAGE, InProcessModel, flat
from tests.cluster.emulator import ApiServer
from tests.cluster.test_deploy import IMAGE2, LABELS

TLS_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "type": "kubernetes.io/tls",
    "metadata": {
        "name": "linear-dev-tls",
        "namespace": "linear-dev",
        "annotations": {"cert-manager.io/certificate-name": "linear-dev-tls"},
    },
}
OTHER_APP = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "other", "namespace": "linear-dev", "labels": {**LABELS, "mlgit.dev/model": "other"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "other"}},
        "template": {
            "metadata": {"labels": {"app": "other"}},
            "spec": {"containers": [{"name": "c", "image": "other:1"}]},
        },
    },
}


def test_destroy_deletes_exactly_this_environment_and_its_tls_secret(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    emulator.put(TLS_SECRET, manager="cert-manager")  # what cert-manager's ingress-shim issues
    emulator.put(OTHER_APP)
    emulator.put({**TLS_SECRET, "metadata": {"name": "shared-wildcard", "namespace": namespace}})
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert (
        "deployment.apps/linear -n linear-dev deleted" in out and "secret/linear-dev-tls -n linear-dev deleted" in out
    )
    left = [
        (res.plural, name)
        for (res, ns, name), obj in emulator.objects._objects.items()
        if ns == namespace and not obj.deleted and res.plural not in ("replicasets", "pods", "events")
    ]
    assert sorted(left) == [("deployments", "other"), ("secrets", "shared-wildcard")]
    again = mlgit("destroy", "--env", "dev")
    assert again.exit_code == 0
    assert "nothing to destroy (already gone)" in flat(again.stdout)


def test_destroying_production_needs_yes(emulator: ApiServer, mlgit: Callable[..., Result]) -> None:
    refused = mlgit("destroy", "--env", "prod")
    assert refused.exit_code == 1
    assert "prod is a production environment: not destroyed" in flat(refused.stderr)
    assert "mlgit destroy --env prod --yes" in flat(refused.stderr)
    confirmed = mlgit("destroy", "--env", "prod", "--yes")
    assert confirmed.exit_code == 0, confirmed.output


def test_status_json_compares_the_pinned_digest_with_what_runs(
    emulator: ApiServer,
    namespace: str,
    smoke_endpoint: InProcessModel,
    model_repo: Path,
    mlgit: Callable[..., Result],
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    write_pin(model_repo, "dev", IMAGE2)
    result = mlgit("status", "--json")
    assert result.exit_code == 0, result.output
    records = {r["environment"]: r for r in json.loads(result.stdout)}
    dev = records["dev"]
    assert dev["desired_digest"] == IMAGE2.split("@")[1] and dev["running_digest"] == IMAGE.split("@")[1]
    assert dev["in_sync"] is False
    assert dev["replicas"] == {"ready": 1, "desired": 1}
    assert dev["url"] == "https://linear.dev.models.example.com/"
    assert dev["rollout"] == "complete" and dev["revision"] == "1"
    assert dev["certificate"] is None  # dev uses the Ingress annotation: no Certificate object of ours
    assert records["prod"] == {**records["prod"], "deployed": False, "namespace": "linear-prod"}
    table = mlgit("status", "--env", "dev")
    assert table.exit_code == 0 and "complete" in table.stdout


def test_rollback_restores_the_previous_revision_and_waits(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE2).exit_code == 0
    result = mlgit("rollback", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert "rolled back dev to revision 1" in flat(result.stdout)
    deployment = emulator.get("apps/v1", "Deployment", "linear", namespace)
    assert deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert "pod-template-hash" not in deployment["spec"]["template"]["metadata"]["labels"]
    to_two = mlgit("rollback", "--env", "dev", "--revision", "2")
    assert to_two.exit_code == 0, to_two.output
    missing = mlgit("rollback", "--env", "dev", "--revision", "9")
    assert missing.exit_code == 1
    assert "has no revision 9" in flat(missing.stderr) and "revisions on the cluster: 3, 4" in flat(missing.stderr)


def test_rollback_of_an_environment_never_deployed(emulator: ApiServer, mlgit: Callable[..., Result]) -> None:
    result = mlgit("rollback", "--env", "dev")
    assert result.exit_code == 1
    assert "linear is not deployed in dev" in flat(result.stderr)


def test_destroy_removes_the_gateway_reference_grant_too(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result], model_repo: Path
) -> None:
    """With the Gateway in another namespace, mlgit renders a ReferenceGrant: destroy must not leave it."""
    config = model_repo / "mlgit.yaml"
    config.write_text(
        config.read_text() + "exposure:\n  kind: gateway\n  gateway: {name: public, namespace: gateway-system}\n"
    )
    assert mlgit("render").exit_code == 0
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    grant = ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "linear-tls", namespace)
    assert emulator.get(grant[0], grant[1], grant[2], grant[3]) is not None
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert emulator.get(grant[0], grant[1], grant[2], grant[3]) is None
