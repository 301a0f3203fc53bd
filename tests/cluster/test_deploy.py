"""`mlgit deploy` against the API server emulator (tests/cluster/emulator.py: an emulator, not a cluster).

The manifests are the real renderer's (kubectl kustomize over the repository's deploy/ tree); the
Deployment controller is a stand-in (tests/cluster/controller.py), and the smoke check talks to the
model in-process instead of through a port-forward.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from tests.cluster.conftest import IMAGE, InProcessModel, flat
from tests.cluster.controller import DeploymentController
from tests.cluster.emulator import ApiServer

IMAGE2 = "registry.example.com/linear@sha256:" + "2" * 64
LABELS = {"app.kubernetes.io/managed-by": "mlgit", "mlgit.dev/model": "linear", "mlgit.dev/environment": "dev"}


def _configmap(name: str, labels: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "linear-dev", "labels": labels},
        "data": {},
    }


def test_first_deploy_applies_waits_smoke_checks_and_prints_the_url(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "deployment.apps/linear -n linear-dev created" in out
    assert "answered the sample as expected" in out
    assert "deployed dev: https://linear.dev.models.example.com/" in out
    deployment = emulator.get("apps/v1", "Deployment", "linear", namespace)
    assert deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert deployment["metadata"]["managedFields"][0] == {
        **deployment["metadata"]["managedFields"][0],
        "manager": "mlgit",
        "operation": "Apply",
    }
    for kind, name in [("ServiceAccount", "linear"), ("Service", "linear"), ("NetworkPolicy", "linear")]:
        obj = emulator.get("networking.k8s.io/v1" if kind == "NetworkPolicy" else "v1", kind, name, namespace)
        assert obj is not None and LABELS.items() <= obj["metadata"]["labels"].items()
    assert smoke_endpoint.requests == [("GET", "/v2/models/linear/ready"), ("POST", "/v2/models/linear/infer")]
    assert "1/1 updated, 1/1 available" in flat(result.stderr)


def test_deploy_records_image_and_smoke_latency_for_promotion(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result], tmp_path: Path
) -> None:
    dotenv = tmp_path / "deploy.env"
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--dotenv", str(dotenv))
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert values["MLGIT_DEPLOYED_IMAGE"] == IMAGE
    assert float(values["MLGIT_SMOKE_LATENCY_MS"]) > 0


def test_second_deploy_of_the_same_thing_changes_nothing(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    before = emulator.get("apps/v1", "Deployment", "linear", namespace)
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert "dev: unchanged" in flat(result.stdout)
    assert " created" not in result.stdout and " configured" not in result.stdout
    after = emulator.get("apps/v1", "Deployment", "linear", namespace)
    assert after == before


def test_prune_deletes_only_this_models_stale_objects_in_this_environment(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    # an earlier render's generated ConfigMap, applied by mlgit then
    emulator.put(_configmap("linear-settings-old", LABELS), manager="mlgit", operation="Apply")
    emulator.put(_configmap("other-model", {**LABELS, "mlgit.dev/model": "other"}), manager="mlgit", operation="Apply")
    emulator.put(_configmap("linear-staging", {**LABELS, "mlgit.dev/environment": "staging"}))
    emulator.put(_configmap("unmanaged", {}))
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    assert "configmap/linear-settings-old -n linear-dev pruned" in flat(result.stdout)
    assert emulator.get("v1", "ConfigMap", "linear-settings-old", namespace) is None
    for survivor in ("other-model", "linear-staging", "unmanaged"):
        assert emulator.get("v1", "ConfigMap", survivor, namespace) is not None


def test_prune_spares_what_a_controller_made_with_our_labels(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    """cert-manager's ingress-shim copies the Ingress's labels onto the Certificate it creates and owns."""
    owned = _configmap("made-by-a-controller", LABELS)
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "linear", "uid": "1", "controller": True}
    ]
    emulator.put(owned, manager="cert-manager-ingress-shim")
    emulator.put(_configmap("written-by-hand", LABELS), manager="kubectl-edit")
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    for survivor in ("made-by-a-controller", "written-by-hand"):
        assert emulator.get("v1", "ConfigMap", survivor, namespace) is not None


def test_prune_keeps_settings_a_kept_replicaset_mounts(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    """The settings ConfigMap is named by content hash; rolling back to an older ReplicaSet needs its own."""
    emulator.put(_configmap("linear-settings-previous", LABELS), manager="mlgit", operation="Apply")
    volume = {"name": "settings", "configMap": {"name": "linear-settings-previous"}}
    instance = {"app.kubernetes.io/name": "linear", "app.kubernetes.io/instance": "linear-dev"}
    template = {"metadata": {"labels": {**LABELS, **instance}}, "spec": {"containers": [], "volumes": [volume]}}
    replicaset = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "linear-previous", "namespace": namespace, "labels": {**LABELS, **instance}},
        "spec": {"replicas": 0, "selector": {"matchLabels": instance}, "template": template},
    }
    emulator.put(replicaset, manager="kube-controller-manager")
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    assert emulator.get("v1", "ConfigMap", "linear-settings-previous", namespace) is not None


def test_a_rollout_that_times_out_is_diagnosed_and_rolled_back(
    emulator: ApiServer,
    namespace: str,
    controller: DeploymentController,
    smoke_endpoint: InProcessModel,
    mlgit: Callable[..., Result],
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    controller.broken.add(IMAGE2)
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE2, "--timeout", "1")
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "did not finish within 1s" in err
    assert "ImagePullBackOff" in err and "Failed to pull image" in err
    assert "rolled back deployment/linear to revision 1" in err
    assert "Traceback" not in result.output
    deployment = emulator.get("apps/v1", "Deployment", "linear", namespace)
    assert deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_no_rollback_leaves_the_failed_rollout_for_inspection(
    emulator: ApiServer,
    namespace: str,
    controller: DeploymentController,
    smoke_endpoint: InProcessModel,
    mlgit: Callable[..., Result],
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    controller.broken.add(IMAGE2)
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE2, "--timeout", "1", "--no-rollback")
    assert result.exit_code == 1
    assert "mlgit rollback --env dev" in flat(result.stderr)
    deployment = emulator.get("apps/v1", "Deployment", "linear", namespace)
    assert deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE2


def test_dry_run_prints_the_diff_and_changes_nothing(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    before = emulator.get("apps/v1", "Deployment", "linear", namespace)
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE2, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "diff computed client-side" in flat(result.stderr)  # the emulator refuses dryRun=All
    assert f"-        image: {IMAGE}" in result.stdout and f"+        image: {IMAGE2}" in result.stdout
    assert emulator.get("apps/v1", "Deployment", "linear", namespace) == before
    unchanged = mlgit("deploy", "--env", "dev", "--image", IMAGE, "--dry-run")
    assert "dev: no changes" in flat(unchanged.stdout)


def test_deploy_creates_the_namespace_only_when_configured(
    emulator: ApiServer, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result]
) -> None:
    missing = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert missing.exit_code == 1
    assert "namespace linear-dev does not exist" in flat(missing.stderr)
    assert "create_namespace: true" in flat(missing.stderr)
    review = mlgit("deploy", "--env", "review", "--slug", "feat-x", "--image", IMAGE)
    assert review.exit_code == 0, review.output
    assert emulator.get("v1", "Namespace", "linear-review") is not None
    deployment = emulator.get("apps/v1", "Deployment", "linear-feat-x", "linear-review")
    assert deployment is not None
    assert deployment["metadata"]["labels"]["mlgit.dev/environment"] == "review-feat-x"


def test_staging_and_production_deploy_only_digests(mlgit: Callable[..., Result]) -> None:
    result = mlgit("deploy", "--env", "staging", "--image", "registry.example.com/linear:v1")
    assert result.exit_code == 1
    assert "deploys only digest-pinned images" in flat(result.stderr)
    assert "REF@sha256:DIGEST" in flat(result.stderr)


def test_switching_autoscaling_on_keeps_the_running_replica_count(
    emulator: ApiServer, namespace: str, smoke_endpoint: InProcessModel, mlgit: Callable[..., Result], model_repo: Path
) -> None:
    """Server-side apply drops a field its manager stops applying; replicas must not fall back to 1."""
    config = model_repo / "mlgit.yaml"
    original = config.read_text()
    config.write_text(original + "environments:\n  dev: {replicas: 3}\n  staging: {}\n  prod: {}\n")
    assert mlgit("render").exit_code == 0
    assert mlgit("deploy", "--env", "dev", "--image", IMAGE).exit_code == 0
    autoscaled = "  dev: {autoscaling: {enabled: true, min_replicas: 2, max_replicas: 5}}\n"
    config.write_text(original + "environments:\n" + autoscaled + "  staging: {}\n  prod: {}\n")
    assert mlgit("render").exit_code == 0
    result = mlgit("deploy", "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 0, result.output
    deployment = emulator.get("apps/v1", "Deployment", "linear", namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 3
