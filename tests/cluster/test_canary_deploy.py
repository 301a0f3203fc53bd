"""A canary on a real control plane (tests/cluster/conftest.py): turning it on beside a running stable, shifting its
weight and promoting it, each a change of the pin file alone, then destroying everything. Fake nodes carry no
traffic: these tests check the objects and the weights the API server holds."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from mlgit.cluster.objects import MANAGED_KINDS
from mlgit.manifests.canary_state import write_canary
from mlgit.manifests.pins import write_pin
from tests.cluster.conftest import DIGEST2, flat, image, update_config
from tests.cluster.kube import Kube, containers

SKIP_SMOKE = "--skip-smoke"
GATEWAY = {"kind": "gateway", "gateway": {"name": "public", "namespace": "gateway-system"}}


def _selector(name: str) -> str:
    return f"app.kubernetes.io/managed-by=mlgit,mlgit.dev/model={name},mlgit.dev/environment=dev"


def _weights(kube: Kube, name: str, namespace: str, exposure: str) -> tuple[int, int]:
    """(stable, canary) weights as the API server holds them, the same for HTTP and gRPC (serving.grpc_port)."""
    http, grpc = (_route_weights(kube, name, namespace, exposure, protocol) for protocol in ("http", "grpc"))
    assert grpc == http
    return http


def _route_weights(kube: Kube, name: str, namespace: str, exposure: str, protocol: str) -> tuple[int, int]:
    if exposure == "gateway":
        route = kube.get(f"{protocol}route", name, namespace)
        assert route is not None
        refs = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
        return refs[name], refs[f"{name}-canary"]
    ingress = kube.get("ingress", f"{name}-grpc-canary" if protocol == "grpc" else f"{name}-canary", namespace)
    assert ingress is not None
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight-total"] == "100"
    weight = int(annotations["nginx.ingress.kubernetes.io/canary-weight"])
    return 100 - weight, weight


def _deploy(mlgit: Callable[..., Result], *extra: str) -> Result:
    result = mlgit("deploy", "--env", "dev", *extra)
    assert result.exit_code == 0, result.output
    return result


def _status(mlgit: Callable[..., Result]) -> dict[str, Any]:
    result = mlgit("status", "--env", "dev", "--json")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    return record


@pytest.mark.parametrize("exposure", ["ingress", "gateway"])
def test_a_canary_turns_on_shifts_and_is_promoted_through_the_pin_file(
    exposure: str,
    name: str,
    namespace: str,
    model_repo: Path,
    model_server: subprocess.Popen[bytes],
    mlgit: Callable[..., Result],
    kube: Kube,
) -> None:
    stable, canary = image(name), image(name, DIGEST2)
    # gRPC beside HTTP: its route splits by the same pin-file weights.
    update_config(
        model_repo, {"serving": {"grpc_port": 9000}, **({"exposure": GATEWAY} if exposure == "gateway" else {})}
    )
    write_pin(model_repo, "dev", stable)
    _deploy(mlgit)
    before = kube.get("deployment", name, namespace)
    assert before is not None

    # Turning the canary on in a running environment: render adds its parts to the pin file (no canary runs),
    # and the stable Deployment keeps its selector: an immutable field, so any change would be refused.
    update_config(model_repo, {"environments": {"dev": {"canary": {"weight": 10}}, "staging": {}, "prod": {}}})
    _deploy(mlgit)
    after = kube.get("deployment", name, namespace)
    assert after is not None and after["spec"]["selector"] == before["spec"]["selector"]
    assert after["spec"]["template"]["metadata"]["labels"]["mlgit.dev/track"] == "stable"
    idle = kube.get("deployment", f"{name}-canary", namespace)
    assert idle is not None and idle["spec"]["replicas"] == 0
    assert _weights(kube, name, namespace, exposure) == (100, 0)

    # The canary at 10%: both Deployments roll out, and the smoke check asks each.
    write_canary(model_repo, "dev", canary=canary, weight=10, replicas=1)
    result = _deploy(mlgit)
    assert f"rollout of {name}-canary: 1/1 updated, 1/1 available" in flat(result.stderr)
    assert flat(result.stdout).count(f"model {name} is ready and answered the sample as expected") == 2
    running = kube.get("deployment", f"{name}-canary", namespace)
    assert running is not None and containers(running) == {"server": canary}
    assert running["status"]["readyReplicas"] == 1
    # Its pods are another instance: the stable's Service and Deployment never select them.
    service = kube.get("service", name, namespace)
    assert service is not None
    pods = kube.list("pods", namespace, ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items()))
    assert {p["metadata"]["labels"]["mlgit.dev/track"] for p in pods} == {"stable"}
    assert _weights(kube, name, namespace, exposure) == (90, 10)
    status = _status(mlgit)
    assert status["running_image"] == stable
    assert status["canary"]["running_image"] == canary
    assert status["canary"]["weight"] == 10 and status["canary"]["replicas"] == {"ready": 1, "desired": 1}

    # Shifting the weight is a change of the pin file alone, and render --check stays clean.
    write_canary(model_repo, "dev", weight=50)
    assert mlgit("render", "--check").exit_code == 0
    _deploy(mlgit, SKIP_SMOKE)
    assert _weights(kube, name, namespace, exposure) == (50, 50)
    assert _status(mlgit)["canary"]["weight"] == 50

    # Promotion: the canary's digest becomes the stable's, and no canary runs.
    write_canary(model_repo, "dev", stable=canary, weight=0, replicas=0)
    _deploy(mlgit, SKIP_SMOKE)
    promoted = kube.get("deployment", name, namespace)
    assert promoted is not None and containers(promoted) == {"server": canary}
    idle = kube.get("deployment", f"{name}-canary", namespace)
    assert idle is not None and idle["spec"]["replicas"] == 0
    assert _weights(kube, name, namespace, exposure) == (100, 0)

    # Destroy leaves nothing of either track.
    destroyed = mlgit("destroy", "--env", "dev")
    assert destroyed.exit_code == 0, destroyed.output
    out = flat(destroyed.stdout)
    assert f"deployment.apps/{name}-canary -n {namespace} deleted" in out
    assert f"configmap/{name}-canary-split -n {namespace} deleted" in out
    for api_version, kind in MANAGED_KINDS:
        group = api_version.rpartition("/")[0]
        assert not kube.list(f"{kind.lower()}.{group}" if group else kind.lower(), namespace, _selector(name)), kind


def test_a_canary_that_never_becomes_ready_is_rolled_back_and_the_stable_left_alone(
    name: str,
    namespace: str,
    model_repo: Path,
    mlgit: Callable[..., Result],
    kube: Kube,
) -> None:
    stable, canary = image(name), image(name, DIGEST2)
    update_config(model_repo, {"environments": {"dev": {"canary": {}}, "staging": {}, "prod": {}}})
    write_pin(model_repo, "dev", stable)
    write_canary(model_repo, "dev", canary=canary, weight=10, replicas=1)
    _deploy(mlgit, SKIP_SMOKE)
    stable_before = kube.get("deployment", name, namespace)
    assert stable_before is not None
    # kwok never makes a pod of an image containing `never-ready` Ready: the canary's rollout cannot finish.
    write_canary(model_repo, "dev", canary=image(name, DIGEST2, marker="-never-ready"))
    result = mlgit("deploy", "--env", "dev", SKIP_SMOKE, "--timeout", "20")
    assert result.exit_code == 1, result.output
    err = flat(result.stderr)
    assert f"rollout of {name}-canary did not finish within 20s" in err
    assert f"deployment/{name}-canary rolled back to revision 1" in err
    rolled = kube.get("deployment", f"{name}-canary", namespace)
    assert rolled is not None and containers(rolled) == {"server": canary}
    stable_after = kube.get("deployment", name, namespace)
    assert stable_after is not None
    assert stable_after["metadata"]["generation"] == stable_before["metadata"]["generation"]  # not touched
