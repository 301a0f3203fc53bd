"""`mlgit destroy`: delete exactly this model's objects in one environment, and its TLS secret."""

from __future__ import annotations

from typing import Any

from mlgit.cluster import apply
from mlgit.cluster.apply import Change
from mlgit.cluster.client import Cluster
from mlgit.cluster.objects import Key, key
from mlgit.targets import Target

CERTIFICATE_NAME = "cert-manager.io/certificate-name"
CERTIFICATE = ("cert-manager.io/v1", "Certificate")


def _controlled_by_one_of(obj: dict[str, Any], owners: list[dict[str, Any]]) -> bool:
    """Whether `obj`'s controller (ownerReferences) is one of `owners`: same kind and name, and same uid."""
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")]
    return any(
        ref.get("kind") == owner["kind"]
        and ref.get("name") == owner["metadata"]["name"]
        and ref.get("uid") == owner["metadata"].get("uid")
        for ref in refs
        for owner in owners
    )


def _issued_for_us(cluster: Cluster, target: Target, secret: dict[str, Any], found: list[dict[str, Any]]) -> bool:
    """Whether cert-manager issued `secret` for a Certificate of this environment.

    Ours: our own Certificate (gateway exposure; it carries our labels, as does the one ingress-shim
    copies our Ingress's labels onto), or a Certificate our Ingress controls (ingress-shim makes it
    with an ownerReference), in both cases naming this secret.
    """
    name = (secret["metadata"].get("annotations") or {}).get(CERTIFICATE_NAME)
    if not name:
        return False  # not issued by cert-manager: a secret someone else provides (a shared wildcard)
    certificate = next((o for o in found if o["kind"] == CERTIFICATE[1] and o["metadata"]["name"] == name), None)
    if certificate is None:
        certificate = cluster.get(*CERTIFICATE, name, target.namespace)
        if certificate is None or not _controlled_by_one_of(certificate, found):
            return False
    return (certificate.get("spec") or {}).get("secretName") == secret["metadata"]["name"]


def _tls_secrets(cluster: Cluster, target: Target, found: list[dict[str, Any]]) -> list[Key]:
    """Secrets carrying our labels, plus the TLS secrets cert-manager issued for our Ingress/Certificate.

    A secret our Ingress `tls` or Certificate `secretName` names is deleted only when it belongs to this
    model's environment (_issued_for_us): the name alone proves nothing. Another model's Ingress can
    name the same secret (before mlgit named TLS secrets after the objects, model `a` environment `b-c`
    and model `a-b` environment `c` shared `a-b-c-tls` in their common default namespace), and a shared
    wildcard secret someone else provides stays.
    """
    names = set()
    for obj in found:
        spec = obj.get("spec") or {}
        if obj["kind"] == "Certificate" and spec.get("secretName"):
            names.add(spec["secretName"])
        if obj["kind"] == "Ingress":
            names.update(t["secretName"] for t in spec.get("tls") or [] if t.get("secretName"))
    keys = {key(s) for s in cluster.list("v1", "Secret", target.namespace, target.selector)}
    for name in sorted(names):
        secret = cluster.get("v1", "Secret", name, target.namespace)
        if secret and _issued_for_us(cluster, target, secret, found):
            keys.add(key(secret))
    return sorted(keys)


BATCH_KINDS = frozenset({("batch/v1", "Job")})


def destroy(cluster: Cluster, target: Target, timeout: float) -> list[Change]:
    """Delete and wait until gone; an environment that is already gone yields no changes."""
    # Batch Jobs too (deploy's prune must leave them running, so they are no MANAGED_KIND): an environment
    # destroyed mid-run would otherwise keep its pods writing results for a model that is gone.
    found = apply.find_managed(cluster, target, BATCH_KINDS)
    secrets = _tls_secrets(cluster, target, found)
    deleted = [k for k in (key(o) for o in found) if apply.delete(cluster, k)]
    apply.wait_gone(cluster, deleted, timeout)
    # Only now: while its Certificate exists, cert-manager would re-issue a deleted secret.
    removed = [k for k in secrets if apply.delete(cluster, k)]
    apply.wait_gone(cluster, removed, timeout)
    return [Change(k, "deleted") for k in deleted + removed]
