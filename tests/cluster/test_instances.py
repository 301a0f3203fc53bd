"""Named instances of one environment on a real control plane: deployed one after the other by one command,
reported each, destroyed apart (the sibling keeps running)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from tests.cluster.conftest import flat, image, update_config
from tests.cluster.kube import Kube

SKIP_SMOKE = "--skip-smoke"


def _names(kube: Kube, kind: str, namespace: str, selector: str) -> set[str]:
    return {o["metadata"]["name"] for o in kube.list(kind, namespace, selector)}


def _status(mlgit: Callable[..., Result], *args: str) -> dict[str, dict]:
    result = mlgit("status", "--env", "dev", "--json", *args)
    assert result.exit_code == 0, result.output
    return {r["environment"]: r for r in json.loads(result.stdout)}


def test_instances_deploy_together_and_destroy_apart(
    name: str, model_repo: Path, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    instances = {"eu": {}, "us": {"replicas": 2}}
    update_config(model_repo, {"environments": {"dev": {"instances": instances}, "staging": {}, "prod": {}}})
    deployed = mlgit("deploy", "--env", "dev", "--image", image(name), SKIP_SMOKE)
    assert deployed.exit_code == 0, deployed.output
    out = flat(deployed.stdout)
    assert "deployed dev/eu: http" in out and "deployed dev/us: http" in out, out
    model = f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={name}"
    assert _names(kube, "deployment", namespace, model) == {f"{name}-eu", f"{name}-us"}
    assert _names(kube, "ingress", namespace, model) == {f"{name}-eu", f"{name}-us"}

    status = _status(mlgit)
    assert set(status) == {"dev/eu", "dev/us"}
    assert status["dev/us"]["instance"] == "us" and status["dev/us"]["replicas"]["desired"] == 2
    assert all(r["deployed"] and r["running_image"] == image(name) for r in status.values())
    assert status["dev/eu"]["url"] == f"https://{name}-eu.dev.models.example.com"

    destroyed = mlgit("destroy", "--env", "dev", "--instance", "eu")
    assert destroyed.exit_code == 0, destroyed.output
    assert f"deployment.apps/{name}-eu -n {namespace} deleted" in flat(destroyed.stdout)
    for kind in ("deployment", "service", "ingress", "configmap", "serviceaccount", "networkpolicy"):
        assert not _names(kube, kind, namespace, f"{model},mlgit.dev/instance=eu"), kind
        assert _names(kube, kind, namespace, f"{model},mlgit.dev/instance=us"), kind
    assert not kube.list("pods", namespace, f"app.kubernetes.io/instance={name}-dev-eu")
    assert kube.list("pods", namespace, f"app.kubernetes.io/instance={name}-dev-us")

    status = _status(mlgit)
    assert not status["dev/eu"]["deployed"] and status["dev/us"]["deployed"]
    assert set(_status(mlgit, "--instance", "us")) == {"dev/us"}

    # Deploying one instance again prunes nothing of the other's.
    again = mlgit("deploy", "--env", "dev", "--instance", "eu", "--image", image(name), SKIP_SMOKE)
    assert again.exit_code == 0, again.output
    assert "pruned" not in flat(again.stdout)
    assert _names(kube, "deployment", namespace, model) == {f"{name}-eu", f"{name}-us"}

    unknown = mlgit("destroy", "--env", "dev", "--instance", "asia")
    assert unknown.exit_code == 1
    assert "environment 'dev' has no instance 'asia': its instances are eu, us" in flat(unknown.output)


def test_an_instance_dropped_from_mlgit_yaml_is_removed_by_the_environments_deploy_and_destroy(
    name: str, model_repo: Path, namespace: str, mlgit: Callable[..., Result], kube: Kube
) -> None:
    model = f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={name}"
    kinds = ("deployment", "service", "ingress", "configmap", "serviceaccount", "networkpolicy")

    def deploy_eu_us_then_drop_us() -> None:
        environments = {"dev": {"instances": {"eu": {}, "us": {}}}, "staging": {}, "prod": {}}
        update_config(model_repo, {"environments": environments})
        deployed = mlgit("deploy", "--env", "dev", "--image", image(name), "--no-wait")
        assert deployed.exit_code == 0, deployed.output
        assert _names(kube, "deployment", namespace, model) == {f"{name}-eu", f"{name}-us"}
        update_config(model_repo, {"environments": {"dev": {"instances": {"eu": {}, "us": None}}}})

    deploy_eu_us_then_drop_us()
    status = mlgit("status", "--env", "dev")
    assert status.exit_code == 0, status.output
    assert "dev/us runs in namespace" in flat(status.output), status.output
    destroyed = mlgit("destroy", "--env", "dev", "--yes")
    assert destroyed.exit_code == 0, destroyed.output
    assert f"deployment.apps/{name}-us -n {namespace} deleted" in flat(destroyed.stdout)
    for kind in kinds:  # nothing carrying the environment's labels is left, declared or not
        assert not _names(kube, kind, namespace, f"{model},mlgit.dev/environment=dev"), kind

    deploy_eu_us_then_drop_us()
    dry = mlgit("deploy", "--env", "dev", "--image", image(name), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dev/us: no longer in environments.dev.instances of mlgit.yaml: a deploy would remove it" in flat(dry.stdout)
    assert _names(kube, "deployment", namespace, model) == {f"{name}-eu", f"{name}-us"}
    again = mlgit("deploy", "--env", "dev", "--image", image(name), "--no-wait")
    assert again.exit_code == 0, again.output
    assert "dev/us: no longer in environments.dev.instances of mlgit.yaml: removing it" in flat(again.stdout)
    for kind in kinds:
        assert not _names(kube, kind, namespace, f"{model},mlgit.dev/instance=us"), kind
        assert _names(kube, kind, namespace, f"{model},mlgit.dev/instance=eu"), kind
    assert "dev/us" not in flat(mlgit("status", "--env", "dev").output)
