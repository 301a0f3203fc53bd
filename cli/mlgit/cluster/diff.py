"""`deploy --dry-run`: what an apply would change, with nothing changed.

The prediction is the API server's: server-side apply with dryRun=All, so defaulting, validation,
admission and field ownership (conflicts included) are the real ones. Every supported Kubernetes serves
dry runs, and admission webhooks must declare they have no side effects on them (sideEffects None or
NoneOnDryRun), so there is no client-side guess to fall back to. Only into a namespace that does not exist
yet can nothing be dry-run: then every object is shown as rendered, and the output says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import yaml

from mlgit.cluster import apply
from mlgit.cluster.client import Cluster
from mlgit.cluster.objects import Obj, comparable, describe, key

SERVER_SIDE = "diff computed by the API server (server-side apply, dryRun=All)"
NO_NAMESPACE = "the namespace does not exist yet: every object would be created as rendered"


@dataclass(frozen=True)
class Plan:
    note: str  # how the prediction was made
    diffs: list[str]  # one unified diff per object that would change


def _text(obj: Obj | None) -> list[str]:
    return [] if obj is None else yaml.safe_dump(comparable(obj), sort_keys=True).splitlines(keepends=True)


def plan(cluster: Cluster, objects: list[Obj], namespace_exists: bool, force_conflicts: bool = False) -> Plan:
    """Diffs between the live objects and what applying `objects` would leave."""
    diffs = []
    for obj in objects:
        k = key(obj)
        live, predicted = None, obj
        if namespace_exists:
            live = cluster.get(k[0], k[1], k[3], k[2] or None)
            predicted = apply.server_side_apply(cluster, obj, live, force_conflicts=force_conflicts, dry_run=True)[0]
        before, after = _text(live), _text(predicted)
        if before != after:
            name = describe(k)
            label = "live" if live is not None else "(absent)"
            diffs.append("".join(difflib.unified_diff(before, after, f"{name} {label}", f"{name} after apply")))
    return Plan(note=SERVER_SIDE if namespace_exists else NO_NAMESPACE, diffs=diffs)
