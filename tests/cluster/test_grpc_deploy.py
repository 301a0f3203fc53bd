"""gRPC exposure on a real control plane: `mlgit deploy` applies the GRPCRoute and its Certificate and
ReferenceGrant, prunes them when serving.grpc_port goes, and `mlgit destroy` leaves none behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from tests.cluster.conftest import flat, image, update_config
from tests.cluster.kube import Kube

SKIP_SMOKE = "--skip-smoke"
GATEWAY = {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}}


def _names(kube: Kube, kind: str, namespace: str, model: str) -> set[str]:
    selector = f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={model},mlgit.dev/environment=dev"
    return {o["metadata"]["name"] for o in kube.list(kind, namespace, selector)}


def test_grpcroute_is_applied_pruned_and_destroyed(
    name: str, namespace: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    update_config(model_repo, {"serving": {"grpc_port": 9000}, "exposure": GATEWAY})
    deployed = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert deployed.exit_code == 0, deployed.output
    assert _names(kube, "grpcroute", namespace, name) == {name}
    assert _names(kube, "certificate", namespace, name) == {name, f"{name}-grpc"}
    assert _names(kube, "referencegrant", namespace, name) == {f"{name}-tls", f"{name}-grpc-tls"}
    assert _names(kube, "networkpolicy", namespace, name) == {name, f"{name}-exposure", f"{name}-grpc-exposure"}
    service = kube.get("service", name, namespace)
    assert service is not None
    grpc = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc == [{"name": "grpc", "port": 9000, "targetPort": "grpc", "protocol": "TCP",
                     "appProtocol": "kubernetes.io/h2c"}]  # fmt: skip

    update_config(model_repo, {"serving": {"grpc_port": None}})
    pruned = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert pruned.exit_code == 0, pruned.output
    assert f"grpcroute.gateway.networking.k8s.io/{name} -n {namespace} pruned" in flat(pruned.stdout)
    assert not _names(kube, "grpcroute", namespace, name)
    assert _names(kube, "certificate", namespace, name) == {name}

    update_config(model_repo, {"serving": {"grpc_port": 9000}})
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    destroyed = mlgit("destroy", "--env", "dev")
    assert destroyed.exit_code == 0, destroyed.output
    for kind in ("grpcroute", "httproute", "certificate", "referencegrant", "networkpolicy", "deployment"):
        assert not _names(kube, kind, namespace, name), kind
