"""`mlgit destroy`: delete exactly this model's objects in one environment, and its TLS secret."""

from __future__ import annotations

from typing import Any

from mlgit.cluster import apply
from mlgit.cluster.apply import Change
from mlgit.cluster.client import Cluster
from mlgit.cluster.objects import Key, key
from mlgit.cluster.target import Target

CERTIFICATE_NAME = "cert-manager.io/certificate-name"


def _tls_secrets(cluster: Cluster, target: Target, found: list[dict[str, Any]]) -> list[Key]:
    """The TLS secrets cert-manager issued for our Ingress/Certificate, plus Secrets carrying our labels.

    A secret only named in our Ingress's tls section is deleted only when cert-manager issued it (its
    certificate-name annotation is set): a shared wildcard secret someone else provides stays.
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
        if secret and CERTIFICATE_NAME in (secret["metadata"].get("annotations") or {}):
            keys.add(key(secret))
    return sorted(keys)


def destroy(cluster: Cluster, target: Target, timeout: float) -> list[Change]:
    """Delete and wait until gone; an environment that is already gone yields no changes."""
    found = apply.find_managed(cluster, target)
    secrets = _tls_secrets(cluster, target, found)
    deleted = [k for k in (key(o) for o in found) if apply.delete(cluster, k)]
    apply.wait_gone(cluster, deleted, timeout)
    # Only now: while its Certificate exists, cert-manager would re-issue a deleted secret.
    removed = [k for k in secrets if apply.delete(cluster, k)]
    apply.wait_gone(cluster, removed, timeout)
    return [Change(k, "deleted") for k in deleted + removed]
