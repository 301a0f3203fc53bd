"""Planted violations: one small change to a compliant input document, and the policy that must catch it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]


def _first(doc: Document, kind: str) -> dict[str, Any]:
    return next(r for r in doc["resources"] if r["kind"] == kind)


def _server(doc: Document) -> dict[str, Any]:
    containers = _first(doc, "Deployment")["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "server")


def _pod(doc: Document) -> dict[str, Any]:
    return _first(doc, "Deployment")["spec"]["template"]["spec"]


def _drop(kind: str) -> Callable[[Document], None]:
    def change(doc: Document) -> None:
        doc["resources"] = [r for r in doc["resources"] if r["kind"] != kind]

    return change


def _set(where: Callable[[Document], dict[str, Any]], **values: Any) -> Callable[[Document], None]:
    def change(doc: Document) -> None:
        where(doc).update(values)

    return change


def _annotate(key: str, value: str) -> Callable[[Document], None]:
    def change(doc: Document) -> None:
        _first(doc, "Ingress")["metadata"].setdefault("annotations", {})[key] = value

    return change


def _no_tls(doc: Document) -> None:
    _first(doc, "Ingress")["spec"].pop("tls")


def _foreign_host(doc: Document) -> None:
    spec = _first(doc, "Ingress")["spec"]
    spec["rules"][0]["host"] = "model.attacker.net"
    spec["tls"][0]["hosts"] = ["model.attacker.net"]


def _latest(doc: Document) -> None:
    # Still pinned by digest, so only the :latest rule (not the digest rule) is broken.
    name, digest = _server(doc)["image"].split("@")
    _server(doc)["image"] = f"{name.rsplit(':', 1)[0]}:latest@{digest}"


def _tag_only(doc: Document) -> None:
    _server(doc)["image"] = _server(doc)["image"].split("@")[0].rsplit(":", 1)[0] + ":1.0.0"


def _foreign_registry(doc: Document) -> None:
    _server(doc)["image"] = "docker.io/someone/model@" + _server(doc)["image"].split("@")[1]


def _no_memory_limit(doc: Document) -> None:
    _server(doc)["resources"]["limits"].pop("memory")


def _gpu_on_cpu_model(doc: Document) -> None:
    _server(doc)["resources"]["limits"]["nvidia.com/gpu"] = 1


def _open_endpoint(doc: Document) -> None:
    server = _server(doc)
    server["env"] = [e for e in server["env"] if e["name"] != "MLGIT_SERVING_AUTH_MODE"]


def _metrics_routed(doc: Document) -> None:
    paths = _first(doc, "Ingress")["spec"]["rules"][0]["http"]["paths"]
    paths.append({**paths[0], "path": "/metrics"})


def _all_ports_open(doc: Document) -> None:
    for policy in (r for r in doc["resources"] if r["kind"] == "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            rule.pop("ports", None)


def _liveness_on_ready(doc: Document) -> None:
    _server(doc)["livenessProbe"]["httpGet"]["path"] = "/v2/health/ready"


def _writable_root(doc: Document) -> None:
    _server(doc)["securityContext"]["readOnlyRootFilesystem"] = False


def _host_path(doc: Document) -> None:
    _pod(doc).setdefault("volumes", []).append({"name": "models", "hostPath": {"path": "/srv/models"}})


def _fixed_replicas(doc: Document) -> None:
    _drop("HorizontalPodAutoscaler")(doc)
    _first(doc, "Deployment")["spec"]["replicas"] = 2


def _hpa_min_one(doc: Document) -> None:
    _first(doc, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = 1


def _unlabelled(doc: Document) -> None:
    _first(doc, "Service")["metadata"]["labels"].pop("app.kubernetes.io/version")


def _slow_probe_budget(doc: Document) -> None:
    doc["context"]["model"]["max_delay_ms"] = 1000.0


def _short_grace(doc: Document) -> None:
    _pod(doc)["terminationGracePeriodSeconds"] = 5


def _small_body(doc: Document) -> None:
    doc["context"]["model"]["largest_input_bytes"] = 200 * 1024 * 1024


@dataclass(frozen=True)
class Plant:
    policy: str
    description: str
    change: Callable[[Document], None]


PLANTS = [
    Plant("MLGIT-NET-001", "Ingress without spec.tls", _no_tls),
    Plant(
        "MLGIT-NET-001", "Ingress with a self-signed issuer", _annotate("cert-manager.io/cluster-issuer", "selfsigned")
    ),
    Plant("MLGIT-NET-002", "Ingress host outside the domain", _foreign_host),
    Plant("MLGIT-NET-003", "NetworkPolicy removed", _drop("NetworkPolicy")),
    Plant("MLGIT-IMG-001", "server image :latest (with a digest)", _latest),
    Plant("MLGIT-IMG-002", "server image by tag in production", _tag_only),
    Plant("MLGIT-IMG-003", "server image from Docker Hub", _foreign_registry),
    Plant("MLGIT-RES-001", "server without a memory limit", _no_memory_limit),
    Plant("MLGIT-RES-002", "CPU model asking for a GPU", _gpu_on_cpu_model),
    Plant("MLGIT-REL-001", "liveness probe on /v2/health/ready", _liveness_on_ready),
    Plant("MLGIT-REL-002", "HPA allowing one replica in production", _hpa_min_one),
    Plant("MLGIT-REL-003", "PodDisruptionBudget removed", _drop("PodDisruptionBudget")),
    Plant("MLGIT-REL-004", "HorizontalPodAutoscaler removed (two fixed replicas)", _fixed_replicas),
    Plant("MLGIT-SEC-001", "writable root filesystem", _writable_root),
    Plant(
        "MLGIT-SEC-001",
        "privilege escalation allowed",
        lambda d: _server(d)["securityContext"].update(allowPrivilegeEscalation=True),
    ),
    Plant("MLGIT-SEC-002", "hostPath volume", _host_path),
    Plant("MLGIT-SEC-002", "hostNetwork", _set(_pod, hostNetwork=True)),
    Plant("MLGIT-SEC-003", "production server without an auth mode", _open_endpoint),
    Plant("MLGIT-NET-004", "/metrics routed through the Ingress", _metrics_routed),
    Plant("MLGIT-NET-005", "NetworkPolicies admitting every port", _all_ports_open),
    Plant("MLGIT-META-001", "Service without app.kubernetes.io/version", _unlabelled),
    Plant("MLGIT-ML-001", "1 s batching delay against probe timeouts", _slow_probe_budget),
    Plant("MLGIT-ML-002", "5 s grace period against a 20 s drain", _short_grace),
    Plant("MLGIT-ML-003", "200 MiB inputs through the ingress body limit", _small_body),
]


def _deploy_prod(doc: Document) -> dict[str, Any]:
    return next(
        j
        for j in doc["pipeline"].values()
        if isinstance(j, dict)
        and j.get("environment", {})
        and isinstance(j["environment"], dict)
        and j["environment"].get("name") == "prod"
        and j["environment"].get("action", "start") == "start"
    )


def _review_deploy(doc: Document) -> dict[str, Any]:
    return next(
        j
        for j in doc["pipeline"].values()
        if isinstance(j, dict)
        and isinstance(j.get("environment"), dict)
        and j["environment"].get("name", "").startswith("review/")
        and j["environment"].get("action", "start") == "start"
    )


def _auto_prod(doc: Document) -> None:
    for rule in _deploy_prod(doc)["rules"]:
        rule.pop("when", None)


PIPELINE_PLANTS = [
    Plant("MLGIT-CI-001", "prod deploy without on_stop", lambda d: _deploy_prod(d)["environment"].pop("on_stop")),
    Plant("MLGIT-CI-002", "prod deploy runs by itself", _auto_prod),
    Plant(
        "MLGIT-CI-002",
        "prod deploy from any branch",
        lambda d: _deploy_prod(d).update(rules=[{"if": "$CI_COMMIT_BRANCH", "when": "manual"}]),
    ),
    Plant(
        "MLGIT-CI-003",
        "review app without auto_stop_in",
        lambda d: _review_deploy(d)["environment"].pop("auto_stop_in"),
    ),
]
