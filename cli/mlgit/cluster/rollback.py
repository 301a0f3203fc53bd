"""Rolling a Deployment back to an earlier ReplicaSet revision, the way `kubectl rollout undo` does:
the old ReplicaSet's pod template is copied into the Deployment, and the controller rolls it out."""

from __future__ import annotations

import copy
from typing import Any

from mlgit.cluster.client import Cluster, api_errors
from mlgit.cluster.objects import pod_selector
from mlgit.errors import MlgitError

REVISION = "deployment.kubernetes.io/revision"


def revision_of(obj: dict[str, Any]) -> int | None:
    """The revision the Deployment controller annotated a Deployment or ReplicaSet with."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    return int(value) if value and value.isdigit() else None


def revisions(cluster: Cluster, deployment: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The Deployment's ReplicaSets (by owner reference) keyed by revision number."""
    meta = deployment["metadata"]
    found = {}
    for rs in cluster.list("apps/v1", "ReplicaSet", meta["namespace"], pod_selector(deployment)):
        owners = rs["metadata"].get("ownerReferences") or []
        revision = revision_of(rs)
        if revision is not None and any(o.get("uid") == meta.get("uid") for o in owners):
            found[revision] = rs
    return found


def current_revision(deployment: dict[str, Any], known: dict[int, dict[str, Any]]) -> int | None:
    """The revision the Deployment is on: its own annotation, else the newest ReplicaSet."""
    return revision_of(deployment) or (max(known) if known else None)


def rollback(cluster: Cluster, deployment: dict[str, Any], to_revision: int | None = None) -> int:
    """Put the pod template of `to_revision` (default: the one before the current) back; returns it."""
    name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
    known = revisions(cluster, deployment)
    current = current_revision(deployment, known)
    if to_revision is None:
        earlier = [r for r in known if current is None or r < current]
        if not earlier:
            raise MlgitError(
                f"deployment {name} has no earlier revision to roll back to",
                f"revisions on the cluster: {', '.join(map(str, sorted(known))) or 'none'}",
            )
        to_revision = max(earlier)
    elif to_revision not in known:
        raise MlgitError(
            f"deployment {name} has no revision {to_revision}",
            f"revisions on the cluster: {', '.join(map(str, sorted(known))) or 'none'} "
            "(older ones are gone once spec.revisionHistoryLimit is exceeded)",
        )
    template = copy.deepcopy(known[to_revision]["spec"]["template"])
    # The controller adds this label per ReplicaSet; the Deployment's template never carries it.
    (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    resource = cluster.resource("apps/v1", "Deployment")
    assert resource is not None
    with api_errors(f"roll back deployment {name}", cluster.context):
        resource.patch(
            body=[{"op": "replace", "path": "/spec/template", "value": template}],
            name=name,
            namespace=namespace,
            content_type="application/json-patch+json",
            field_manager="mlgit-rollback",
        )
    return to_revision
