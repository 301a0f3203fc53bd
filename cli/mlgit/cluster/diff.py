"""`deploy --dry-run`: what an apply would change, with nothing changed.

The prediction comes from the API server (server-side apply with dryRun=All: defaulting, admission
and field ownership included). A server that refuses dry runs (HTTP 400: an old or partial API server,
a webhook without dry-run support, the test suite's emulator) gets a client-side prediction instead:
the rendered fields laid over the live object. The output says which one was used.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from mlgit.cluster.apply import FIELD_MANAGER
from mlgit.cluster.client import Cluster, api_errors
from mlgit.cluster.objects import Obj, comparable, describe, key

SERVER_SIDE = "diff computed by the API server (server-side apply, dryRun=All)"
REFUSED = "the API server refused a dry run: diff computed client-side (rendered fields over the live objects)"
NO_NAMESPACE = "the namespace does not exist yet: every object would be created as rendered"


@dataclass(frozen=True)
class Plan:
    note: str  # how the prediction was made
    diffs: list[str]  # one unified diff per object that would change


def _overlay(live: Any, rendered: Any) -> Any:
    if isinstance(live, dict) and isinstance(rendered, dict):
        merged = copy.deepcopy(live)
        for name, value in rendered.items():
            merged[name] = _overlay(live.get(name), value)
        return merged
    return copy.deepcopy(rendered)


def _text(obj: Obj | None) -> list[str]:
    return [] if obj is None else yaml.safe_dump(comparable(obj), sort_keys=True).splitlines(keepends=True)


def _server_prediction(cluster: Cluster, obj: Obj) -> Obj | None:
    """The object as the server would store it, or None when the server refuses dry runs."""
    k = key(obj)
    resource = cluster.resource(obj["apiVersion"], obj["kind"])
    assert resource is not None  # checked by place()
    with api_errors(f"dry-run apply {describe(k)}", cluster.context):
        try:
            return resource.server_side_apply(
                body=obj,
                name=k[3],
                namespace=k[2] or None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All",
            ).to_dict()
        except client.ApiException as exc:
            if exc.status == 400 and "dry" in (exc.body or "").lower():
                return None
            raise


def plan(cluster: Cluster, objects: list[Obj], namespace_exists: bool) -> Plan:
    """Diffs between the live objects and what applying `objects` would leave."""
    note = SERVER_SIDE if namespace_exists else NO_NAMESPACE  # nothing dry-runs into a missing namespace
    diffs = []
    for obj in objects:
        k = key(obj)
        live = cluster.get(k[0], k[1], k[3], k[2] or None) if namespace_exists else None
        predicted = _server_prediction(cluster, obj) if note == SERVER_SIDE else None
        if predicted is None:
            note = REFUSED if note == SERVER_SIDE else note
            predicted = _overlay(live or {}, obj)
        before, after = _text(live), _text(predicted)
        if before != after:
            name = describe(k)
            label = "live" if live is not None else "(absent)"
            diffs.append("".join(difflib.unified_diff(before, after, f"{name} {label}", f"{name} after apply")))
    return Plan(note=note, diffs=diffs)
