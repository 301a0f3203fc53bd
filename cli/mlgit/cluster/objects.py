"""Kubernetes objects as plain dicts: identity, apply order, and the kinds mlgit manages."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # apiVersion, kind, namespace ('' when cluster-scoped), name

# Every kind mlgit renders. Prune and destroy look only at these (and only at objects carrying this
# model's and environment's labels), so nothing else in a namespace is ever touched.
MANAGED_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
    ("route.openshift.io/v1", "Route"),
    ("cert-manager.io/v1", "Certificate"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
)

# Dependencies first (a Deployment's ServiceAccount and ConfigMap exist before its pods start).
_ORDER = [
    "Namespace",
    "ServiceAccount",
    "Secret",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Certificate",
    "Ingress",
    "HTTPRoute",
    "GRPCRoute",
    "Route",
    "ReferenceGrant",
    "ServiceMonitor",
]

# Server-owned fields: never part of a diff between what git says and what runs.
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


def key(obj: Obj) -> Key:
    meta = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])


def describe(k: Key) -> str:
    """kubectl-style `kind/name` (with the namespace when it has one)."""
    api_version, kind, namespace, name = k
    group = api_version.rpartition("/")[0]
    text = f"{kind.lower()}{'.' + group if group else ''}/{name}"
    return f"{text} -n {namespace}" if namespace else text


def apply_order(objects: list[Obj]) -> list[Obj]:
    return sorted(objects, key=lambda o: (_ORDER.index(o["kind"]) if o["kind"] in _ORDER else len(_ORDER), key(o)))


def comparable(obj: Obj | None) -> Obj | None:
    """The object without status and server-owned metadata, for diffs."""
    if obj is None:
        return None
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    meta = clean.get("metadata", {})
    for field in _SERVER_METADATA:
        meta.pop(field, None)
    annotations = meta.get("annotations") or {}
    for name in _SERVER_ANNOTATIONS:
        annotations.pop(name, None)
    if "annotations" in meta and not annotations:
        del meta["annotations"]
    return clean


def pod_selector(deployment: Obj) -> str:
    """The label selector of a Deployment's pods and ReplicaSets."""
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{name}={value}" for name, value in labels.items())
