"""An in-memory Kubernetes API server for the cluster tests: kmock's KubernetesEmulator, extended.

This is an EMULATOR, not a cluster: no controllers, no admission, no defaulting, no scheduling.
kmock 0.8 serves discovery, stores objects and renders Status errors; this subclass adds what mlgit's
cluster code relies on, following the real kube-apiserver:

- `/api/v1` discovery names its groupVersion `v1` (kmock says `/v1`), and paths of the namespaces
  resource itself (`/api/v1/namespaces/NAME`), which kmock would parse as a namespace;
- server-side apply (PATCH application/apply-patch+yaml) creates a missing object; on an existing one,
  fields the same manager applied before and no longer applies are removed and the rest merged. Lists
  are replaced whole (no list merge keys) and conflicts between managers are not modelled;
- merge patch (strategic merge is treated as a merge patch), JSON patch, the status subresource;
- metadata.uid, creationTimestamp, resourceVersion (bumped only on a real change, so a no-op apply
  keeps it, as on the apiserver), generation (bumped when anything outside metadata and status changes);
- label selectors (=, ==, !=, in, notin, exists, !exists) on lists;
- `namespaces "x" not found` (404) for writes into a missing namespace;
- dryRun is refused with 400, like a server whose admission chain cannot dry-run: deploy's
  client-side diff is what runs here.
Not emulated: field selectors (400), deletecollection, finalizers, watches (mlgit polls).
tests/cluster/controller.py plays the Deployment controller.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import jsonpatch
import yaml
from kmock import KubernetesEmulator, KubernetesError, Request, ResourceInfo, resource
from kmock._internal import apps  # RawHandler._handle: dispatch without kmock's own state changes

Obj = dict[str, Any]
VERBS = {"get", "list", "create", "update", "patch", "delete", "watch"}
# (group, version, plural) -> (kind, namespaced)
KINDS: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("", "v1", "namespaces"): ("Namespace", False),
    ("", "v1", "serviceaccounts"): ("ServiceAccount", True),
    ("", "v1", "configmaps"): ("ConfigMap", True),
    ("", "v1", "secrets"): ("Secret", True),
    ("", "v1", "services"): ("Service", True),
    ("", "v1", "pods"): ("Pod", True),
    ("", "v1", "events"): ("Event", True),
    ("apps", "v1", "deployments"): ("Deployment", True),
    ("apps", "v1", "replicasets"): ("ReplicaSet", True),
    ("networking.k8s.io", "v1", "ingresses"): ("Ingress", True),
    ("networking.k8s.io", "v1", "networkpolicies"): ("NetworkPolicy", True),
    ("autoscaling", "v2", "horizontalpodautoscalers"): ("HorizontalPodAutoscaler", True),
    ("policy", "v1", "poddisruptionbudgets"): ("PodDisruptionBudget", True),
}
CRDS: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("cert-manager.io", "v1", "certificates"): ("Certificate", True),
    ("gateway.networking.k8s.io", "v1", "httproutes"): ("HTTPRoute", True),
    ("gateway.networking.k8s.io", "v1beta1", "referencegrants"): ("ReferenceGrant", True),
    ("monitoring.coreos.com", "v1", "servicemonitors"): ("ServiceMonitor", True),
}
_SELECTOR = re.compile(r"^\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_selector(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` is two requirements."""
    return [part for part in re.split(r",(?![^(]*\))", text) if part.strip()]


def matches(labels: dict[str, str], selector: str | None) -> bool:
    """A Kubernetes label selector, as the apiserver evaluates it."""
    for requirement in _split_selector(selector or ""):
        match = _SELECTOR.match(requirement)
        if not match:
            raise KubernetesError(status=400, reason="BadRequest", message=f"invalid label selector {requirement!r}")
        negate, name, op, value, set_op, values = match.groups()
        if op:
            ok = (labels.get(name) == value) != (op == "!=")
        elif set_op:
            chosen = {v.strip() for v in values.split(",")}
            ok = labels.get(name) in chosen if set_op == "in" else labels.get(name) not in chosen
        else:
            ok = (name in labels) != bool(negate)
        if not ok:
            return False
    return True


def _prune_applied(live: Any, previous: Any, applied: Any) -> Any:
    """Remove from `live` the fields `previous` (the manager's last apply) set and `applied` drops."""
    if not (isinstance(live, dict) and isinstance(previous, dict)):
        return live
    result = {}
    for name, value in live.items():
        if name in previous and not (isinstance(applied, dict) and name in applied):
            continue
        nested = applied.get(name) if isinstance(applied, dict) else None
        result[name] = _prune_applied(value, previous.get(name), nested) if name in previous else value
    return result


def _merge(live: Any, patch: Any, *, null_deletes: bool) -> Any:
    if not (isinstance(live, dict) and isinstance(patch, dict)):
        return copy.deepcopy(patch)
    result = dict(live)
    for name, value in patch.items():
        if value is None and null_deletes:
            result.pop(name, None)
        else:
            result[name] = _merge(live.get(name), value, null_deletes=null_deletes)
    return result


@attrs.define(kw_only=True)
class ApiServer(KubernetesEmulator):
    """kmock's emulator with the apiserver behaviour listed in the module docstring."""

    crds: bool = True  # serve cert-manager, Gateway API and prometheus-operator kinds
    on_write: list[Callable[[ApiServer, Obj], None]] = attrs.field(factory=list)  # controllers
    _applied: dict[tuple[Any, ...], Obj] = attrs.field(factory=dict, init=False)
    _versions: itertools.count = attrs.field(factory=lambda: itertools.count(1000), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for (group, version, plural), (kind, namespaced) in {**KINDS, **(CRDS if self.crds else {})}.items():
            subresources = {"status"} if kind in ("Deployment", "ReplicaSet", "Certificate", "Namespace") else set()
            self.resources[f"{group or 'v1'}/{version}/{plural}" if group else f"v1/{plural}"] = ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subresources
            )
        (self.fallback**1)[self._is_object_request] << self._serve
        self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})

    # --- discovery fix and dispatch --------------------------------------------------------------

    async def _serve_version(self, request: Request) -> Any:
        payload = await super()._serve_version(request)
        if payload.get("groupVersion") == "/v1":
            payload["groupVersion"] = "v1"
        return payload

    async def _handle(self, request: Request) -> Any:
        # Skip KubernetesEmulator._handle: it changes state before any reaction runs, so a test's
        # injected 403 would still write. Our own _serve does the state changes instead.
        return await apps.RawHandler._handle(self, request)

    def _parse(self, request: Request) -> tuple[tuple[str, str, str], str | None, str | None, str | None] | None:
        parts = request.url.path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        gvp = (group, version, rest[0])
        if gvp not in KINDS and not (self.crds and gvp in CRDS):
            return None
        return gvp, namespace, rest[1] if len(rest) > 1 else None, "/".join(rest[2:]) or None

    def _is_object_request(self, request: Request) -> bool:
        return self._parse(request) is not None

    # --- the store -------------------------------------------------------------------------------

    @staticmethod
    def _key(gvp: tuple[str, str, str], namespace: str | None, name: str) -> tuple[Any, ...]:
        return (resource(*gvp), namespace, name)

    def _live(self, key: tuple[Any, ...]) -> Obj | None:
        obj = self.objects._objects.get(key)
        return None if obj is None or obj.deleted else copy.deepcopy(obj.raw)

    def _kind_of(self, api_version: str, kind: str) -> tuple[tuple[str, str, str], bool]:
        group, _, version = api_version.rpartition("/")
        for gvp, (known, namespaced) in {**KINDS, **CRDS}.items():
            if gvp[:2] == (group, version) and known == kind:
                return gvp, namespaced
        raise KeyError(f"{api_version} {kind}")

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The stored object (a copy), for assertions and controllers."""
        gvp, namespaced = self._kind_of(api_version, kind)
        return self._live(self._key(gvp, namespace if namespaced else None, name))

    def put(self, obj: Obj, *, manager: str = "test", operation: str = "Update") -> Obj:
        """Store an object as a write by `manager` would (server-set metadata filled in); returns it."""
        gvp, namespaced = self._kind_of(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        key = self._key(gvp, meta.get("namespace") if namespaced else None, meta["name"])
        return self._store(key, self._live(key), copy.deepcopy(obj), manager, operation)

    def _store(self, key: tuple[Any, ...], old: Obj | None, new: Obj, manager: str, operation: str) -> Obj:
        meta = new.setdefault("metadata", {})
        if old is not None:
            for name in ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields"):
                meta[name] = old["metadata"].get(name)
            body = {k: v for k, v in new.items() if k not in ("metadata", "status")}
            if body != {k: v for k, v in old.items() if k not in ("metadata", "status")}:
                meta["generation"] = old["metadata"].get("generation", 1) + 1
            if new == old:
                return new  # a no-op write keeps the resourceVersion, as the apiserver does
        else:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        managers = [m for m in meta.get("managedFields") or [] if m["manager"] != manager]
        meta["managedFields"] = [*managers, {"manager": manager, "operation": operation, "time": _now()}]
        meta["resourceVersion"] = str(next(self._versions))
        if key in self.objects._objects:
            self.objects._objects[key].create(new)
        else:
            self.objects._objects[key] = self.Object(new)
        for controller in self.on_write:
            controller(self, copy.deepcopy(new))
        return new

    # --- requests --------------------------------------------------------------------------------

    def _serve(self, request: Request) -> Any:
        gvp, namespace, name, subresource = self._parse(request)  # type: ignore[misc]
        kind, namespaced = {**KINDS, **CRDS}[gvp]
        namespace = namespace if namespaced else None
        if "dryRun" in request.params:
            raise KubernetesError(status=400, reason="BadRequest", message="dryRun is not supported by this emulator")
        if "fieldSelector" in request.params:
            raise KubernetesError(status=400, reason="BadRequest", message="field selectors are not emulated")
        method = request.method.value
        if name is None:
            if method == "GET":
                return self._list(gvp, kind, namespace, request.params.get("labelSelector"))
            if method == "POST":
                body = json.loads(request.body)
                return self._write(gvp, kind, namespace, body["metadata"]["name"], None, "create", body, request)
            raise KubernetesError(status=405, reason="MethodNotAllowed", message=f"{method} on a collection")
        key = self._key(gvp, namespace, name)
        if subresource not in (None, "status"):  # pods/log, pods/portforward, scale: nothing runs here
            raise KubernetesError(status=404, reason="NotFound", message=f"{gvp[2]}/{subresource} is not emulated")
        if method == "GET":
            live = self._live(key)
            if live is None:
                raise KubernetesError(status=404, reason="NotFound", message=f'{gvp[2]} "{name}" not found')
            return live
        if method == "DELETE":
            live = self._live(key)
            if live is None:
                raise KubernetesError(status=404, reason="NotFound", message=f'{gvp[2]} "{name}" not found')
            self.objects._objects[key].delete()
            return live
        if method == "PATCH":
            return self._write(gvp, kind, namespace, name, subresource, "patch", None, request)
        raise KubernetesError(status=405, reason="MethodNotAllowed", message=f"{method} is not emulated")

    def _list(self, gvp: tuple[str, str, str], kind: str, namespace: str | None, selector: str | None) -> Obj:
        items = [
            copy.deepcopy(obj.raw)
            for (res, ns, _), obj in self.objects._objects.items()
            if res == resource(*gvp)
            and not obj.deleted
            and (namespace is None or ns == namespace)
            and matches(obj.raw["metadata"].get("labels") or {}, selector)
        ]
        api_version = f"{gvp[0]}/{gvp[1]}" if gvp[0] else gvp[1]
        return {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "items": items,
            "metadata": {"resourceVersion": str(next(self._versions))},
        }

    def _write(
        self,
        gvp: tuple[str, str, str],
        kind: str,
        namespace: str | None,
        name: str,
        subresource: str | None,
        verb: str,
        body: Obj | None,
        request: Request,
    ) -> Obj:
        if namespace is not None and self.get("v1", "Namespace", namespace) is None:
            raise KubernetesError(status=404, reason="NotFound", message=f'namespaces "{namespace}" not found')
        key = self._key(gvp, namespace, name)
        live = self._live(key)
        api_version = f"{gvp[0]}/{gvp[1]}" if gvp[0] else gvp[1]
        if verb == "create":
            if live is not None:
                raise KubernetesError(status=409, reason="AlreadyExists", message=f'{gvp[2]} "{name}" already exists')
            assert body is not None
            body.update(apiVersion=api_version, kind=kind)
            body["metadata"].update(name=name, **({"namespace": namespace} if namespace else {}))
            return self._store(key, None, body, request.params.get("fieldManager", "test"), "Update")
        content_type = request.headers.get("Content-Type", "").split(";")[0]
        manager = request.params.get("fieldManager", "unknown")
        if content_type == "application/apply-patch+yaml":
            applied = yaml.safe_load(request.text)
            applied.pop("status", None)
            previous = self._applied.get((*key, manager), {})
            base = _prune_applied(live, previous, applied) if live else {}
            new = _merge(base, applied, null_deletes=False)
            new["metadata"].update(name=name, **({"namespace": namespace} if namespace else {}))
            self._applied[(*key, manager)] = applied
            return self._store(key, live, new, manager, "Apply")
        if live is None:
            raise KubernetesError(status=404, reason="NotFound", message=f'{gvp[2]} "{name}" not found')
        patch = json.loads(request.body)
        if content_type == "application/json-patch+json":
            new = jsonpatch.apply_patch(live, patch)
        elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            new = _merge(live, patch, null_deletes=True)
        else:
            raise KubernetesError(status=415, reason="UnsupportedMediaType", message=content_type)
        if subresource == "status":
            new = {**live, "status": new.get("status")}
        elif live.get("status") is not None:
            new["status"] = live["status"]
        return self._store(key, live, new, manager, "Update")
