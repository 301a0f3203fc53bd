"""`mlgit status`: per environment, what git wants against what runs."""

from __future__ import annotations

from typing import Any

from mlgit.cluster.client import Cluster
from mlgit.cluster.rollback import REVISION
from mlgit.cluster.rollout import RolloutFailed, assess
from mlgit.config.load import Project
from mlgit.manifests.canary_state import read_canary
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
        **({"instance": target.instance_name} if target.instance_name else {}),
    }
    deployments = {d["metadata"]["name"]: d for d in cluster.list("apps/v1", "Deployment", namespace, selector)}
    deployment = deployments.get(target.name)
    if deployment is None:
        return record
    model = _server(project, deployment)
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
    if target.canary is not None:
        record["canary"] = _canary(project, target, cluster, deployments.get(target.canary_name))
    return record


def _server(project: Project, deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next((c for c in containers if c["image"].startswith(project.config.image.repository)), containers[0])


def _canary_weight(cluster: Cluster, target: Target) -> int | None:
    """The canary's share of requests in percent as the live route has it (None: no route splits)."""
    namespace, canary = target.namespace, target.canary_name
    kind = target.exposure.kind
    if kind == "gateway":
        route = cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", target.name, namespace)
        for rule in ((route or {}).get("spec") or {}).get("rules") or []:
            refs = rule.get("backendRefs") or []
            total = sum(r.get("weight", 1) for r in refs)
            for ref in refs:
                if ref.get("name") == canary and total:
                    return round(100 * ref.get("weight", 1) / total)
    if kind == "ingress":
        ingress = cluster.get("networking.k8s.io/v1", "Ingress", canary, namespace)
        annotations = ((ingress or {}).get("metadata") or {}).get("annotations") or {}
        weight = annotations.get("nginx.ingress.kubernetes.io/canary-weight")
        if weight is not None and weight.isdigit():
            total = annotations.get("nginx.ingress.kubernetes.io/canary-weight-total", "100")
            return round(100 * int(weight) / int(total)) if total.isdigit() and int(total) else None
    if kind == "route":
        route = cluster.get("route.openshift.io/v1", "Route", target.name, namespace)
        spec = (route or {}).get("spec") or {}
        backends = [spec.get("to") or {}, *(spec.get("alternateBackends") or [])]
        total = sum(b.get("weight", 100) for b in backends)
        for backend in backends:
            if backend.get("name") == canary and total:
                return round(100 * backend.get("weight", 100) / total)
    return None


def _canary(project: Project, target: Target, cluster: Cluster, deployment: dict[str, Any] | None) -> dict[str, Any]:
    """The canary beside the stable: desired (the pin file) against running digest, replicas, and the split."""
    state = read_canary(project.root, target.env)
    record: dict[str, Any] = {
        "desired_image": state.canary,
        "desired_digest": digest(state.canary),
        "desired_weight": state.weight,
        "desired_replicas": state.replicas,
        "deployed": deployment is not None,
        "weight": _canary_weight(cluster, target),
    }
    if deployment is not None:
        image = _server(project, deployment)["image"]
        status = deployment.get("status") or {}
        record.update(
            running_image=image,
            running_digest=digest(image),
            replicas={"ready": status.get("readyReplicas", 0), "desired": deployment["spec"].get("replicas", 1)},
            rollout=_rollout(deployment),
        )
    return record
