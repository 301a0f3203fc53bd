"""Rendering a canary environment (environments.<env>.canary, docs/canary.md).

Next to the stable Deployment and Service `<name>`, the overlay gets `canary.yaml`: the Deployment and Service
`<name>-canary` and copies of the NetworkPolicies that admit traffic to the pods, all made from the very
objects the stable runs (so every base change reaches both), and every Deployment patch of the overlay and its
components targets both Deployments. The canary's pods are another app.kubernetes.io/instance
(`Target.canary_instance`), so the stable Deployment keeps the selector it has had since the environment
began (Kubernetes never lets it change) and the stable Service never sends requests to a canary pod.

The overlay's labels give every object the environment's instance; kustomize replacements, which run after
them, set the canary's selectors to its own (from an annotation of the canary Service), and copy the weights
from the pin file's split ConfigMap (mlgit.manifests.canary_state) into the route. The route itself is rendered
with placeholder weights (stable 100, canary 0), so `render --check` never depends on the weight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgit.config.yamlio import dump_documents, dump_yaml, load_documents
from mlgit.console import print_warning
from mlgit.errors import MlgitError
from mlgit.files import RenderedFile
from mlgit.manifests.canary_state import (
    CANARY_IMAGE,
    CANARY_WEIGHT,
    MIRROR_PERCENT,
    STABLE_WEIGHT,
    has_canary,
    read_canary,
    set_mirror_percent,
)
from mlgit.manifests.openshift import SERVING_CERT_MOUNT, reencrypts, serving_cert_secret
from mlgit.manifests.pins import image_entry, pin_path
from mlgit.targets import Target
from mlgit.templating import render_template

TRACK_LABEL = "mlgit.dev/track"
INSTANCE_LABEL = "app.kubernetes.io/instance"
# On the canary Service: the canary pods' instance label, the source of the replacements that set it.
POD_INSTANCE_ANNOTATION = "mlgit.dev/pod-instance"
CANARY_OBJECTS = "canary.yaml"
TRACK_PATCH = "track.yaml"


@dataclass(frozen=True)
class CanaryNames:
    """The objects a canary environment adds next to the stable `<name>` ones."""

    deployment: str
    """Deployment and Service `<name>-canary`."""
    split: str
    """The ConfigMap holding the weights (generated from the pin file)."""

    @classmethod
    def of(cls, name: str) -> CanaryNames:
        return cls(deployment=f"{name}-canary", split=f"{name}-canary-split")


@dataclass(frozen=True)
class CanaryRoute:
    """What the exposure template needs to split (and mirror) requests."""

    service: str
    mirror: bool
    mirror_url: str
    """ingress-nginx's mirror-target: the canary Service inside the cluster, with the request's URI."""


def canary_route(tgt: Target) -> CanaryRoute | None:
    """The canary split of `tgt`'s route; None without a canary."""
    if tgt.canary is None:
        return None
    service = tgt.canary_name
    url = f"http://{service}.{tgt.namespace}.svc.cluster.local$request_uri"
    return CanaryRoute(service=service, mirror=tgt.canary.mirror, mirror_url=url)


def _one(docs: list[Any], kind: str, name: str) -> Any:
    (found,) = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    return found


def canary_objects(tgt: Target, base: dict[str, str], exposure: str | None, grpc: str | None = None) -> str:
    """canary.yaml: the canary Deployment and Service and the NetworkPolicies admitting traffic to its pods,
    copied from the stable's rendered `base` files (path -> text), `exposure` and gRPC exposure `grpc` texts
    (the Service so has the stable's ports, grpc included)."""
    name, canary = tgt.name, tgt.canary_name
    deployment = _one(load_documents(base["deployment.yaml"]), "Deployment", name)
    deployment["metadata"]["name"] = canary
    pod = deployment["spec"]["template"]
    for labels in (deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]):
        labels[INSTANCE_LABEL] = tgt.canary_instance
    pod["metadata"]["labels"][TRACK_LABEL] = "canary"
    (server,) = [c for c in pod["spec"]["containers"] if c["name"] == "server"]
    server["image"] = CANARY_IMAGE
    service = _one(load_documents(base["service.yaml"]), "Service", name)
    service["metadata"]["name"] = canary
    service["metadata"]["annotations"] = {POD_INSTANCE_ANNOTATION: tgt.canary_instance}
    service["spec"]["selector"][INSTANCE_LABEL] = tgt.canary_instance
    policies = [_one(load_documents(base["networkpolicy.yaml"]), "NetworkPolicy", name)]
    if exposure is not None:
        policies.append(_one(load_documents(exposure), "NetworkPolicy", f"{name}-exposure"))
    if grpc is not None:
        policies.append(_one(load_documents(grpc), "NetworkPolicy", f"{name}-grpc-exposure"))
    for policy in policies:
        policy["metadata"]["name"] = policy["metadata"]["name"].replace(name, canary, 1)
        policy["spec"]["podSelector"]["matchLabels"][INSTANCE_LABEL] = tgt.canary_instance
    header = (
        f"# Generated by `mlgit render` from mlgit.yaml (environments.{tgt.env}.canary): the canary, copied from\n"
        "# the stable's objects. Its image, replicas and weight are state in image/kustomization.yaml.\n"
    )
    return header + dump_documents([deployment, service, *policies])


def canary_policy_names(tgt: Target, exposed: bool, grpc: bool = False) -> list[str]:
    """The NetworkPolicies of canary.yaml (`grpc`: the environment exposes serving.grpc_port)."""
    suffixes = [*(["-exposure"] if exposed else []), *(["-grpc-exposure"] if grpc else [])]
    return [tgt.canary_name, *(tgt.canary_name + s for s in suffixes)]


def deployment_target(name: str) -> dict[str, str]:
    """The `target` of a patch meant for every Deployment of model `name`: the stable and the canary (a regular
    expression kustomize anchors at both ends)."""
    return {"kind": "Deployment", "name": f"{name}(-canary)?"}


def canary_patches(tgt: Target, patches: dict[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(the overlay's patches that target both Deployments -> their target, patches of one Deployment only).

    A one-Deployment patch applies to both through its `target`; the stable's pods get their track label;
    a re-encrypting Route's serving certificate (a Service and a Deployment patch: kustomize takes no target
    for several objects) gets a twin for the canary Service, with a Secret of its own, since the router
    checks each backend's certificate against that backend's Service name."""
    both = {}
    for path, text in patches.items():
        docs = load_documents(text)
        if len(docs) == 1 and docs[0].get("kind") == "Deployment":
            both[path] = deployment_target(tgt.name)
    track = render_template("manifests", "overlays/env/canary-track.yaml.j2", name=tgt.name, label=TRACK_LABEL)
    own = {TRACK_PATCH: track}
    if reencrypts(tgt):
        own["serving-cert-canary.yaml"] = render_template(
            "manifests",
            "overlays/env/serving-cert.yaml.j2",
            name=tgt.canary_name,
            secret=f"{serving_cert_secret(tgt)}-canary",
            mount=SERVING_CERT_MOUNT,
        )
    return both, own


def stable_image_patch(tgt: Target, override: dict[str, str]) -> dict[str, Any]:
    """A kustomize patch that runs the image of `override` (an `images` entry) in the stable Deployment alone."""
    image = override["newName"] + (f"@{override['digest']}" if "digest" in override else f":{override['newTag']}")
    server = {"name": "server", "image": image}
    patch = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": tgt.name}}
    patch["spec"] = {"template": {"spec": {"containers": [server]}}}
    return {"target": {"kind": "Deployment", "name": tgt.name}, "patch": json.dumps(patch)}


def _weight_targets(tgt: Target, grpc: bool) -> dict[str, list[dict[str, str | None]]]:
    """Where the routes of `tgt` hold each weight of the split ConfigMap (kind, name or None for all, path);
    `grpc`: the gRPC route of serving.grpc_port (mlgit.manifests.grpc_exposure) splits by the same weights."""
    canary = tgt.canary_name
    kind = tgt.exposure.kind
    if kind == "gateway":
        at = "spec.rules.0.backendRefs"
        mirror = {"kind": "HTTPRoute", "name": tgt.name, "path": "spec.rules.0.filters.0.requestMirror.percent"}
        routes = ["HTTPRoute", *(["GRPCRoute"] if grpc else [])]
        return {
            CANARY_WEIGHT: [{"kind": r, "name": tgt.name, "path": f"{at}.1.weight"} for r in routes],
            STABLE_WEIGHT: [{"kind": r, "name": tgt.name, "path": f"{at}.0.weight"} for r in routes],
            **({MIRROR_PERCENT: [mirror]} if tgt.canary.mirror else {}),
        }
    if kind == "ingress":  # ingress-nginx gives the stable Ingress what the canary's does not take
        path = "metadata.annotations.[nginx.ingress.kubernetes.io/canary-weight]"
        ingresses = [canary, *([f"{tgt.name}-grpc-canary"] if grpc else [])]
        return {CANARY_WEIGHT: [{"kind": "Ingress", "name": i, "path": path} for i in ingresses]}
    if kind == "route":  # every Route of the environment (one per public path)
        return {
            CANARY_WEIGHT: [{"kind": "Route", "name": None, "path": "spec.alternateBackends.0.weight"}],
            STABLE_WEIGHT: [{"kind": "Route", "name": None, "path": "spec.to.weight"}],
        }
    return {}


def replacements_context(tgt: Target, exposed: bool, grpc: bool = False) -> dict[str, Any]:
    """What overlays/env/canary-replacements.yaml.j2 needs (`grpc`: the environment exposes serving.grpc_port)."""
    return {
        "name": tgt.canary_name,
        "split": CanaryNames.of(tgt.name).split,
        "annotation": POD_INSTANCE_ANNOTATION,
        "instance_label": INSTANCE_LABEL,
        "policies": canary_policy_names(tgt, exposed, grpc),
        "spread": tgt.highly_available,
        "weights": _weight_targets(tgt, grpc),
    }


def pin_seed(env: str, repository: str, canary: CanaryNames | None) -> str:
    """The pin file `mlgit render` writes when it is missing: the stable image unpinned and, in a canary
    environment, the canary's parts with no canary running (unpinned, 0 replicas, weight 0)."""
    return render_template(
        "manifests", "overlays/env/image/kustomization.yaml.j2", env=env, repository=repository, canary=canary
    )


_CANARY_PARTS = ("replicas", "configMapGenerator")


def _canary_header(env: str) -> str:
    """The seed's comment lines about the canary (what a canary seed has above `apiVersion` and a plain one not)."""
    plain, canary = (pin_seed(env, "", names).split("apiVersion:")[0] for names in (None, CanaryNames.of("x")))
    return canary.removeprefix(plain)


def _turn_off(root: Path, tgt: Target, doc: Any) -> None:
    """Drop the canary's parts; a canary that runs is about to be deleted by the next deploy: say so."""
    state = read_canary(root, tgt.env)
    if state.running:
        print_warning(
            f"{pin_path(root, tgt.env)}: environments.{tgt.env}.canary is no longer in mlgit.yaml, so render removes "
            f"the running canary {state.canary} (weight {state.weight}%, {state.replicas} replicas) and the next "
            "`mlgit deploy` deletes it; to keep it, put the canary back and run `mlgit canary abort` or promote it"
        )
    doc["images"] = [e for e in doc["images"] if not (isinstance(e, dict) and e.get("name") == CANARY_IMAGE)]
    for key in _CANARY_PARTS:
        doc.pop(key, None)


def _turn_on(doc: Any, seed: str) -> None:
    """Add the seed's canary parts (no canary running), leaving the stable entry as the file has it."""
    (seeded,) = load_documents(seed)
    doc["images"].append(next(e for e in seeded["images"] if e["name"] == CANARY_IMAGE))
    for key in _CANARY_PARTS:
        doc[key] = seeded[key]


def _derive(doc: Any, names: CanaryNames) -> bool:
    """Bring what the pin file derives in line; whether anything changed: the canary Deployment's and split
    ConfigMap's names from the model's name (a renamed model), and mirror-percent from the replicas."""
    before = dump_yaml(doc)
    entries = [doc.get(key) for key in _CANARY_PARTS]
    if all(isinstance(e, list) and len(e) == 1 and isinstance(e[0], dict) for e in entries):
        (replicas,), (split,) = entries
        replicas["name"], split["name"] = names.deployment, names.split
        if isinstance(split.get("literals"), list):
            set_mirror_percent(split["literals"], replicas.get("count"))
    return dump_yaml(doc) != before


def _reconciled(root: Path, tgt: Target, seed: str, names: CanaryNames | None) -> str | None:
    """The existing pin file's text with its canary parts in line with mlgit.yaml, edited in place; None when
    it already is (the file is then left exactly as it is)."""
    doc, _ = image_entry(root, tgt.env)
    has = has_canary(root, tgt.env)
    header = _canary_header(tgt.env)
    if names is None:
        if not has:
            return None
        _turn_off(root, tgt, doc)
        return dump_yaml(doc).replace(header, "", 1)
    if has:
        return dump_yaml(doc) if _derive(doc, names) else None
    _turn_on(doc, seed)
    text = dump_yaml(doc)
    top, at, rest = text.partition("apiVersion:")
    return top + header + at + rest if at and header not in text else text


def pin_file(root: Path, tgt: Target, repository: str, path: str) -> RenderedFile:
    """The pin file as render leaves it: seeded when missing; otherwise its state (both images, the weight, the
    replicas) and comments are kept, and only what mlgit.yaml decides is edited in place: turning the canary on
    adds its parts, turning it off removes them (warning while a canary runs), and the canary's Deployment and
    split ConfigMap follow the model's name."""
    names = CanaryNames.of(tgt.name) if tgt.canary is not None else None
    seed = pin_seed(tgt.env, repository, names)
    existing = pin_path(root, tgt.env)
    if not existing.is_file():
        return RenderedFile(path, seed, seed=True)
    try:
        text = _reconciled(root, tgt, seed, names)
    except MlgitError:  # a malformed pin file is left for the commands that read it to report
        text = None
    return RenderedFile(path, seed, seed=True) if text is None else RenderedFile(path, text)
