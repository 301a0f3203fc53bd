"""What OpenShift and the shared review certificate add to deploy/: Route names, the platform and
serving-certificate patches of an overlay, and the review apps' wildcard certificate folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlgit.config.schema import MlgitConfig
from mlgit.files import RenderedFile
from mlgit.targets import REVIEW, Target, target
from mlgit.templating import render_template

SERVING_CERT_MOUNT = "/var/run/secrets/mlgit/serving-cert"
# Under deploy/, beside the review overlay's own files: built next to each app, never inside its nameSuffix.
WILDCARD_DIR = "overlays/review/wildcard"


@dataclass(frozen=True)
class RouteObject:
    """One Route: an OpenShift Route has a single path, so each public path gets its own."""

    name: str
    path: str


def route_objects(name: str, paths: list[str]) -> list[RouteObject]:
    """`name` for the first path (the inference API), `name-<path as a DNS label>` for the others."""
    routes = []
    for index, path in enumerate(paths):
        suffix = path.strip("/").replace("/", "-").replace(".", "-").replace("_", "-").lower()
        routes.append(RouteObject(name if index == 0 else f"{name}-{suffix}", path))
    return routes


def reencrypts(tgt: Target) -> bool:
    """The pods serve HTTPS themselves: a re-encrypting Route."""
    return tgt.exposure.kind == "route" and tgt.tls.enabled and tgt.exposure.route.termination == "reencrypt"


def serving_cert_secret(tgt: Target) -> str:
    """The Secret OpenShift's service CA issues the pods' certificate into."""
    return f"{tgt.name}-serving-cert"


def overlay_patches(tgt: Target) -> Iterator[tuple[str, str]]:
    """(file name, text) of each OpenShift patch the overlay of `tgt` lists under `patches`."""
    if tgt.platform == "openshift":
        yield "platform.yaml", render_template("manifests", "overlays/env/platform.yaml.j2", name=tgt.name)
    if reencrypts(tgt):
        text = render_template(
            "manifests",
            "overlays/env/serving-cert.yaml.j2",
            name=tgt.name,
            secret=serving_cert_secret(tgt),
            mount=SERVING_CERT_MOUNT,
        )
        yield "serving-cert.yaml", text


def mlgit_issues_wildcard(config: MlgitConfig) -> bool:
    """review.tls.wildcard is true: mlgit's own Certificate issues it (a name: the platform provides it)."""
    tls = config.review.tls
    return bool(config.review.enabled and tls and tls.enabled and tls.wildcard is True)


def wildcard_files(config: MlgitConfig, deploy: str) -> Iterator[RenderedFile]:
    """deploy/overlays/review/wildcard/: what every review app shares, applied with each (never per app)."""
    if not config.review.enabled:
        return
    tgt = target(config, REVIEW, overlay=True)
    secret = config.review.wildcard_secret(config.name)
    if secret is None:
        return
    resources = []
    context = {"secret": secret, "host": config.review.wildcard_host, "tls": tgt.tls}
    if mlgit_issues_wildcard(config):
        resources.append("certificate.yaml")
    if tgt.exposure.kind == "route":
        resources.append("router-access.yaml")
    if not resources:
        return
    folder = f"{deploy}/{WILDCARD_DIR}"
    for path in resources:
        yield RenderedFile(f"{folder}/{path}", render_template("manifests", f"{WILDCARD_DIR}/{path}.j2", **context))
    labels = {"app.kubernetes.io/instance": tgt.instance, **tgt.labels}
    text = render_template(
        "manifests",
        f"{WILDCARD_DIR}/kustomization.yaml.j2",
        namespace=tgt.namespace,
        resources=resources,
        labels=labels,
    )
    yield RenderedFile(f"{folder}/kustomization.yaml", text)
