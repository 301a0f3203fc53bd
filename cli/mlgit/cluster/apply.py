"""Server-side apply of an environment's objects, and label-scoped prune and delete.

Apply uses field manager `mlgit`. Fields mlgit does not render stay with whoever set them (a sidecar or
an annotation another manager added, the replica count of an autoscaled Deployment). When a field mlgit
renders was changed imperatively since (kubectl edit/scale/patch, a controller's update: managedFields
operation Update), git is the source of truth and mlgit takes it back, the way Flux and Argo CD apply.
When another owner *declares* the same field (its own server-side apply, operation Apply: another GitOps
tool, a person's `kubectl apply --server-side`), two sources of truth disagree: deploy stops and names
the fields and owners, unless `--force-conflicts` says mlgit wins.
Prune deletes only what mlgit itself applied (managedFields), never what a controller owns.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Literal

from kubernetes import client

from mlgit.cluster.client import Cluster, api_errors
from mlgit.cluster.objects import MANAGED_KINDS, Key, Obj, apply_order, describe, key
from mlgit.errors import MlgitError
from mlgit.targets import Target

FIELD_MANAGER = "mlgit"
Action = Literal["created", "configured", "unchanged", "pruned", "deleted"]


@dataclass(frozen=True)
class Change:
    key: Key
    action: Action
    note: str = ""  # e.g. the fields taken back from an imperative edit

    def __str__(self) -> str:
        text = f"{describe(self.key)} {self.action}"
        return f"{text} ({self.note})" if self.note else text


def place(cluster: Cluster, target: Target, objects: list[Obj]) -> list[Obj]:
    """Objects in apply order with their namespace set; fails before any write if a kind is not served."""
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    missing = sorted(
        f"{api_version} {kind}" for api_version, kind in kinds if cluster.resource(api_version, kind) is None
    )
    if missing:
        raise MlgitError(
            f"the cluster (context {cluster.context}) does not serve {', '.join(missing)}",
            "install the controller that provides it (cert-manager, Gateway API, prometheus-operator) "
            "or turn the feature off in mlgit.yaml",
        )
    placed = []
    for obj in apply_order(objects):
        resource = cluster.resource(obj["apiVersion"], obj["kind"])
        meta = obj.setdefault("metadata", {})
        if resource is not None and resource.namespaced:
            meta.setdefault("namespace", target.namespace)
        placed.append(obj)
    return placed


def namespace_exists(cluster: Cluster, name: str) -> bool | None:
    """True or False; None when the credentials may not read namespaces (a GitLab agent's often cannot)."""
    namespaces = cluster.resource("v1", "Namespace")
    assert namespaces is not None  # the core group always serves namespaces
    with api_errors(f"read namespace {name}", cluster.context):
        try:
            namespaces.get(name=name)
            return True
        except client.ApiException as exc:
            if exc.status in (403, 404):
                return None if exc.status == 403 else False
            raise


def ensure_namespace(cluster: Cluster, target: Target) -> Change | None:
    """Create the namespace when the environment allows it; otherwise fail clearly if it is missing."""
    if namespace_exists(cluster, target.namespace) is not False:
        return None  # exists, or unreadable: then a missing namespace surfaces as apply's clear 404
    if not target.create_namespace:
        raise MlgitError(
            f"namespace {target.namespace} does not exist (context {cluster.context})",
            f"create it, or set environments.{target.env}.create_namespace: true in mlgit.yaml",
        )
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target.namespace}}
    namespaces = cluster.resource("v1", "Namespace")
    assert namespaces is not None
    with api_errors(f"create namespace {target.namespace}", cluster.context):
        namespaces.server_side_apply(body=body, field_manager=FIELD_MANAGER, force_conflicts=True)
    return Change(("v1", "Namespace", "", target.namespace), "created")


def _keep_live_replicas(obj: Obj, live: Obj | None) -> Obj:
    """A Deployment rendered without replicas (an HPA scales it) keeps the count it runs at.

    Server-side apply removes a field its manager stops applying: switching autoscaling on would drop a
    running Deployment to the default of one replica until the HPA reacts. Applying the live count hands
    the field over unchanged; the HPA's later scale updates take it from there.
    """
    if obj["kind"] != "Deployment" or live is None or "replicas" in (obj.get("spec") or {}):
        return obj
    replicas = (live.get("spec") or {}).get("replicas")
    return obj if replicas is None else {**obj, "spec": {**obj["spec"], "replicas": replicas}}


def _conflicts(exc: client.ApiException) -> list[tuple[str, str]]:
    """(field, manager) of each server-side apply conflict in a 409 answer."""
    try:
        causes = (json.loads(exc.body or "{}").get("details") or {}).get("causes") or []
    except (ValueError, AttributeError):
        return []
    found = []
    for cause in causes:
        if cause.get("reason") == "FieldManagerConflict":
            manager = re.search(r'conflict with "([^"]+)"', cause.get("message") or "")
            found.append((str(cause.get("field") or "?"), manager.group(1) if manager else "?"))
    return found


def _declares(live: Obj | None, manager: str) -> bool:
    """The manager owns fields of `live` through server-side apply (a declaration, not an edit)."""
    entries = ((live or {}).get("metadata") or {}).get("managedFields") or []
    return any(e.get("manager") == manager and e.get("operation") == "Apply" for e in entries)


def server_side_apply(
    cluster: Cluster, obj: Obj, live: Obj | None, *, force_conflicts: bool, dry_run: bool = False
) -> tuple[Obj, list[tuple[str, str]]]:
    """Apply one placed object as `mlgit` under the conflict rule of the module docstring.

    Returns the object as stored (or as it would be, with `dry_run`) and the (field, manager) pairs
    taken back from imperative edits.
    """
    k = key(obj)
    resource = cluster.resource(obj["apiVersion"], obj["kind"])
    assert resource is not None  # checked by place()
    action = f"{'dry-run ' if dry_run else ''}apply {describe(k)}"

    def attempt(force: bool) -> Obj:
        options = {"dry_run": "All"} if dry_run else {}
        return resource.server_side_apply(
            body=obj, name=k[3], namespace=k[2] or None, field_manager=FIELD_MANAGER, force_conflicts=force, **options
        ).to_dict()

    with api_errors(action, cluster.context):
        try:
            return attempt(force_conflicts), []
        except client.ApiException as exc:
            conflicts = _conflicts(exc) if exc.status == 409 else []
            if not conflicts:
                raise
    declared = sorted({(field, manager) for field, manager in conflicts if _declares(live, manager)})
    if declared:
        owners = ", ".join(sorted({manager for _, manager in declared}))
        raise MlgitError(
            f"{describe(k)}: {owners} also declares fields that mlgit renders, with other values "
            f"(context {cluster.context})",
            "two tools manage this object: drop these fields from the other one's configuration, or let mlgit "
            "take them over with `mlgit deploy --force-conflicts`",
            problems=[f"{field}: applied by {manager}" for field, manager in declared],
        )
    with api_errors(action, cluster.context):
        return attempt(True), conflicts


def apply_objects(cluster: Cluster, objects: list[Obj], *, force_conflicts: bool = False) -> list[Change]:
    """Server-side apply each placed object; an unchanged resourceVersion means nothing changed."""
    changes = []
    for obj in objects:
        k = key(obj)
        before = cluster.get(*k[:2], k[3], k[2] or None)
        after, taken = server_side_apply(
            cluster, _keep_live_replicas(obj, before), before, force_conflicts=force_conflicts
        )
        if before is None:
            action: Action = "created"
        elif before["metadata"].get("resourceVersion") == after["metadata"].get("resourceVersion"):
            action = "unchanged"
        else:
            action = "configured"
        note = "; ".join(f"took {field} back from {manager}" for field, manager in taken)
        changes.append(Change(k, action, note))
    return changes


def find_managed(cluster: Cluster, target: Target, extra_kinds: frozenset[tuple[str, str]] = frozenset()) -> list[Obj]:
    """Live objects labelled for this model and environment, over every kind mlgit renders."""
    kinds = list(MANAGED_KINDS) + sorted(extra_kinds - set(MANAGED_KINDS))
    found = []
    for api_version, kind in kinds:
        found += cluster.list(api_version, kind, target.namespace, target.selector)
    return found


def delete(cluster: Cluster, k: Key) -> bool:
    """Delete one object; False when it was already gone.

    Foreground: the object stays (with deletionTimestamp) until the garbage collector has deleted its
    dependents (a Deployment's ReplicaSets and their Pods), so waiting for it to be gone waits for those.
    """
    resource = cluster.resource(k[0], k[1])
    if resource is None:
        return False
    with api_errors(f"delete {describe(k)}", cluster.context):
        try:
            resource.delete(name=k[3], namespace=k[2] or None, propagation_policy="Foreground")
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
    return True


def wait_gone(cluster: Cluster, keys: list[Key], timeout: float) -> None:
    """Poll until every object is gone (finalizers done), or fail naming those left."""
    deadline = time.monotonic() + timeout
    left = list(keys)
    while True:
        left = [k for k in left if cluster.get(k[0], k[1], k[3], k[2] or None) is not None]
        if not left:
            return
        if time.monotonic() > deadline:
            raise MlgitError(
                f"still there after {timeout:g}s: {', '.join(describe(k) for k in left)}",
                "a finalizer may be blocking deletion; `kubectl get -o yaml` shows metadata.finalizers",
            )
        time.sleep(0.5)


def _applied_by_mlgit(obj: Obj) -> bool:
    """mlgit applied it, and no controller owns it.

    cert-manager's ingress-shim creates a Certificate per Ingress TLS entry, copies the Ingress's labels
    onto it and owns it: it matches our selector, yet pruning it would force a re-issue on every deploy.
    """
    meta = obj.get("metadata") or {}
    if any(ref.get("controller") for ref in meta.get("ownerReferences") or []):
        return False
    return any(
        entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply"
        for entry in meta.get("managedFields") or []
    )


def _mounted_by_replicasets(cluster: Cluster, target: Target) -> set[str]:
    """ConfigMaps the pod templates of this environment's ReplicaSets mount.

    The settings ConfigMap's name carries a content hash, so each revision mounts its own: the ones of
    older revisions kept for rollback (revisionHistoryLimit) must outlive them.
    """
    names = set()
    for replicaset in cluster.list("apps/v1", "ReplicaSet", target.namespace, target.selector):
        for volume in ((replicaset.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []:
            if "configMap" in volume:
                names.add(volume["configMap"].get("name"))
    return names


def prunable(cluster: Cluster, target: Target, rendered: list[Obj]) -> list[Key]:
    """This model's objects in this environment that mlgit applied, are no longer rendered, and are unused.

    Secrets are never pruned unless mlgit renders Secrets: cert-manager's TLS secret carries the
    Certificate's labels yet is not rendered, and pruning it would force a re-issue on every deploy.
    """
    keep = {key(o) for o in rendered}
    kinds = frozenset((o["apiVersion"], o["kind"]) for o in rendered if o["kind"] != "Namespace")
    candidates = [o for o in find_managed(cluster, target, kinds) if key(o) not in keep and _applied_by_mlgit(o)]
    if any(o["kind"] == "ConfigMap" for o in candidates):
        mounted = _mounted_by_replicasets(cluster, target)
        candidates = [o for o in candidates if not (o["kind"] == "ConfigMap" and o["metadata"]["name"] in mounted)]
    return [key(o) for o in candidates]


def prune(cluster: Cluster, target: Target, rendered: list[Obj]) -> list[Change]:
    """Delete what `prunable` finds; deploy calls it once the new revision is rolled out."""
    return [Change(k, "pruned") for k in prunable(cluster, target, rendered) if delete(cluster, k)]
