"""`mlgit status`: per environment, what git wants against what runs."""

from __future__ import annotations

from typing import Any

from mlgit.cluster.client import Cluster
from mlgit.cluster.rollback import REVISION
from mlgit.cluster.rollout import RolloutFailed, assess
from mlgit.config.load import Project
from mlgit.targets import Target, url


def digest(image: str | None) -> str | None:
    return image.split("@", 1)[1] if image and "@" in image else None


def _rollout(deployment: dict[str, Any]) -> str:
    try:
        done, text = assess(deployment)
    except RolloutFailed as exc:
        return f"failed: {exc.message}"
    return "complete" if done else f"in progress: {text}"


def _certificate(certificates: list[dict[str, Any]]) -> str | None:
    if not certificates:
        return None
    for condition in (certificates[0].get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return "ready" if condition.get("status") == "True" else f"not ready: {condition.get('message', '')}"
    return "pending"


def _served_url(routes: list[dict[str, Any]], certificates: list[dict[str, Any]]) -> str | None:
    """The URL the live Ingress or HTTPRoute serves (status reports what runs, not what mlgit.yaml says)."""
    for route in routes:
        spec = route.get("spec") or {}
        hosts = [r.get("host") for r in spec.get("rules") or []] + list(spec.get("hostnames") or [])
        if hosts and hosts[0]:
            return url(hosts[0], https=bool(spec.get("tls") or certificates))
    return None


def environment_status(project: Project, target: Target, cluster: Cluster, desired: str | None) -> dict[str, Any]:
    """A JSON-ready record: desired vs running digest, replicas, URL, certificate, last rollout."""
    namespace, selector = target.namespace, target.selector
    record: dict[str, Any] = {
        "environment": target.display_name,
        "namespace": namespace,
        "context": cluster.context,
        "desired_image": desired,
        "desired_digest": digest(desired),
        "deployed": False,
    }
    deployments = cluster.list("apps/v1", "Deployment", namespace, selector)
    if not deployments:
        return record
    deployment = deployments[0]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    model = next((c for c in containers if c["image"].startswith(project.config.image.repository)), containers[0])
    status = deployment.get("status") or {}
    certificates = cluster.list("cert-manager.io/v1", "Certificate", namespace, selector)
    record.update(
        deployed=True,
        running_image=model["image"],
        running_digest=digest(model["image"]),
        in_sync=desired is not None and (digest(desired) or desired) == (digest(model["image"]) or model["image"]),
        replicas={"ready": status.get("readyReplicas", 0), "desired": deployment["spec"].get("replicas", 1)},
        url=_served_url(
            cluster.list("networking.k8s.io/v1", "Ingress", namespace, selector)
            + cluster.list("gateway.networking.k8s.io/v1", "HTTPRoute", namespace, selector),
            certificates,
        ),
        certificate=_certificate(certificates),
        revision=(deployment["metadata"].get("annotations") or {}).get(REVISION),
        rollout=_rollout(deployment),
    )
    return record
