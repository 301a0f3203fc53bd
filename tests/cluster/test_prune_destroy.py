"""Prune and destroy on a real control plane, next to a foreign app and a second mlgit model in the same
namespace: only this model's objects of this environment go, and destroy returns once the garbage
collector has removed the ReplicaSets and Pods too."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner, Result

from mlgit.main import app
from mlgit.scaffold import InitOptions, init_repository
from tests.cluster.conftest import flat, image, update_config
from tests.cluster.kube import Kube

SKIP_SMOKE = "--skip-smoke"


def _selector(model: str, env: str = "dev") -> str:
    return f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={model},mlgit.dev/environment={env}"


def _names(kube: Kube, kind: str, namespace: str, selector: str | None = None) -> set[str]:
    return {o["metadata"]["name"] for o in kube.list(kind, namespace, selector)}


def test_prune_and_destroy_leave_a_foreign_app_and_a_second_model_alone(
    name: str,
    model_repo: Path,
    linear_onnx: Path,
    tmp_path: Path,
    mlgit: Callable[..., Result],
    kube: Kube,
) -> None:
    runner = CliRunner()
    shared = f"{name}-shared"
    kube.create_namespace(shared)
    try:
        second = init_repository(InitOptions(target=tmp_path / "second", name=f"{name}-b", model=linear_onnx))
        for repo in (model_repo, second):
            update_config(repo, {"environments": {"dev": {"namespace": shared}, "staging": {}, "prod": {}}})
        kube.run("create", "deployment", "foreign", "-n", shared, "--image", "registry.example.com/foreign:1")
        kube.run("label", "deployment", "foreign", "-n", shared, f"mlgit.dev/model={name}")  # a look-alike label
        deployed = runner.invoke(
            app, ["deploy", "--env", "dev", "--image", image(f"{name}-b"), SKIP_SMOKE, str(second)]
        )
        assert deployed.exit_code == 0, deployed.output
        assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
        mine, theirs = _selector(name), _selector(f"{name}-b")
        assert _names(kube, "ingress", shared, mine) == {name}

        update_config(model_repo, {"environments": {"dev": {"exposure": {"kind": "none"}}}})
        pruned = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
        assert pruned.exit_code == 0, pruned.output
        assert f"ingress.networking.k8s.io/{name} -n {shared} pruned" in flat(pruned.stdout)
        assert _names(kube, "ingress", shared) == {f"{name}-b"}

        destroyed = mlgit("destroy", "--env", "dev")
        assert destroyed.exit_code == 0, destroyed.output
        assert f"deployment.apps/{name} -n {shared} deleted" in flat(destroyed.stdout)
        # Gone when destroy returns, dependents included (foreground deletion through the garbage collector).
        for kind in ("deployment", "replicaset", "pod", "service", "configmap", "serviceaccount", "networkpolicy"):
            assert not _names(kube, kind, shared, mine), kind
        assert not kube.list("pods", shared, f"app.kubernetes.io/name={name}")
        assert _names(kube, "deployment", shared) == {"foreign", f"{name}-b"}
        assert _names(kube, "replicaset", shared, theirs) and _names(kube, "pods", shared, "app=foreign")
        assert _names(kube, "ingress", shared, theirs) == {f"{name}-b"}
        again = mlgit("destroy", "--env", "dev")
        assert again.exit_code == 0 and "nothing to destroy (already gone)" in flat(again.stdout)
    finally:
        kube.run("delete", "namespace", shared, "--wait=false", "--ignore-not-found")


def test_destroy_returns_only_once_the_garbage_collector_removed_the_replicasets(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """A finalizer holds the ReplicaSet for a few seconds: destroy must wait for it, not return at once."""
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    (replica_set,) = _names(kube, "replicaset", namespace, _selector(name))
    hold = {"metadata": {"finalizers": ["example.com/hold"]}}
    kube.run("patch", "replicaset", replica_set, "-n", namespace, "--type", "merge", "-p", json.dumps(hold))
    released = threading.Event()

    def release() -> None:
        time.sleep(3)
        patch = '[{"op": "remove", "path": "/metadata/finalizers"}]'
        kube.run("patch", "replicaset", replica_set, "-n", namespace, "--type", "json", "-p", patch)
        released.set()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        result = mlgit("destroy", "--env", "dev")
        assert result.exit_code == 0, result.output
        assert released.is_set(), "destroy returned while the ReplicaSet still existed"
        assert not _names(kube, "replicaset", namespace, _selector(name))
    finally:
        releaser.join()


def test_prune_deletes_only_what_mlgit_applied_and_no_controller_owns(
    name: str, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """Three stale objects with this environment's labels, none rendered any more: only the one mlgit
    applied and nobody took over goes. A controller may adopt what mlgit applied (cert-manager's
    ingress-shim copies the Ingress's labels onto the Certificate it owns); a person's object stays."""
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    ingress = kube.get("ingress", name, namespace)
    assert ingress is not None
    labels = ingress["metadata"]["labels"]
    owner = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": name,
        "uid": ingress["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }

    def config_map(config_name: str, **metadata: object) -> dict:
        meta = {"name": config_name, "namespace": namespace, "labels": labels, **metadata}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}

    kube.apply(config_map("stale"), "mlgit")  # what an earlier render applied
    kube.apply(config_map("adopted", ownerReferences=[owner]), "mlgit")
    kube.run("create", "-f", "-", stdin=json.dumps(config_map("written-by-hand")))
    result = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert result.exit_code == 0, result.output
    assert f"configmap/stale -n {namespace} pruned" in flat(result.stdout)
    left = _names(kube, "configmap", namespace)
    assert "stale" not in left and {"adopted", "written-by-hand"} <= left


def test_prune_keeps_the_settings_a_kept_replicaset_mounts_so_rollback_works(
    name: str, namespace: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """The settings ConfigMap is named by content hash: each revision mounts its own."""
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    (first,) = _names(kube, "configmap", namespace, _selector(name))
    update_config(model_repo, {"serving": {"batching": {"max_batch_size": 7}}})
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    settings = _names(kube, "configmap", namespace, _selector(name))
    assert first in settings and len(settings) == 2
    rolled = mlgit("rollback", "--env", "dev")
    assert rolled.exit_code == 0, rolled.output
    deployment = kube.get("deployment", name, namespace)
    assert deployment is not None
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["settings"]["configMap"]["name"] == first


def test_destroying_production_needs_yes(name: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube) -> None:
    kube.create_namespace(f"{name}-prod")
    # Production needs its API key Secret (mlgit.yaml's default auth there); destroy leaves it alone.
    kube.run("create", "secret", "generic", f"{name}-api-keys", "-n", f"{name}-prod", "--from-literal=key-1=k")
    assert mlgit("deploy", "--env", "prod", "--image", image(name), SKIP_SMOKE).exit_code == 0
    refused = mlgit("destroy", "--env", "prod")
    assert refused.exit_code == 1
    assert "prod is a production environment: not destroyed" in flat(refused.stderr)
    assert "mlgit destroy --env prod --yes" in flat(refused.stderr)
    assert _names(kube, "deployment", f"{name}-prod") == {name}
    confirmed = mlgit("destroy", "--env", "prod", "--yes")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"deployment.apps/{name} -n {name}-prod deleted" in flat(confirmed.stdout)
    assert not _names(kube, "deployment", f"{name}-prod")
    assert kube.get("secret", f"{name}-api-keys", f"{name}-prod") is not None  # the user's, not mlgit's


def test_destroy_removes_the_gateway_reference_grant_too(
    name: str, namespace: str, model_repo: Path, mlgit: Callable[..., Result], kube: Kube
) -> None:
    """With the Gateway in another namespace, mlgit renders a ReferenceGrant: destroy must not leave it."""
    update_config(
        model_repo, {"exposure": {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}}}
    )
    assert mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE).exit_code == 0
    assert _names(kube, "referencegrant", namespace, _selector(name)) == {f"{name}-tls"}
    assert _names(kube, "httproute", namespace, _selector(name)) == {name}
    result = mlgit("destroy", "--env", "dev")
    assert result.exit_code == 0, result.output
    for kind in ("referencegrant", "httproute", "certificate", "deployment"):
        assert not _names(kube, kind, namespace, _selector(name)), kind
