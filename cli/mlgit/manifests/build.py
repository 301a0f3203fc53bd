"""Build the manifests of one environment: `kubectl kustomize` over its overlay, optionally with an image
override and, for review apps, the per-branch names, labels and exposure.

Extras are written as a small wrapper kustomization around a copy of deploy/ in a temporary folder:
kustomize only loads files below a kustomization's root, and the repository is never touched.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.manifests.canary import stable_image_patch
from mlgit.manifests.instances import instance_dir
from mlgit.manifests.kustomize import kustomize
from mlgit.manifests.openshift import WILDCARD_DIR
from mlgit.manifests.pins import pinned_name, split_digest_ref
from mlgit.manifests.render import DEPLOY, exposure_yaml
from mlgit.targets import Target, targets_of

_KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def _image_override(name: str, image: str) -> dict[str, str]:
    if "@" in image:
        repo, digest = split_digest_ref(image)
        return {"name": name, "newName": repo, "digest": digest}
    repo, colon, tag = image.rpartition(":")
    if not colon or "/" in tag or not repo:
        raise MlgitError(
            f"--image {image!r} names no tag or digest", "use REPOSITORY@sha256:<digest> or REPOSITORY:TAG"
        )
    return {"name": name, "newName": repo, "newTag": tag}


def _label_entries(tgt: Target) -> list[dict[str, Any]]:
    """The same two label sets an overlay declares, for what the build adds around it."""
    return [
        {"pairs": {"app.kubernetes.io/instance": tgt.instance}, "includeSelectors": True},
        {"pairs": tgt.labels, "includeTemplates": True},
    ]


def _write_kustomization(folder: Path, **fields: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # JSON is YAML, and needs no quoting rules.
    (folder / "kustomization.yaml").write_text(json.dumps({**_KUSTOMIZATION, **fields}, indent=2), encoding="utf-8")


def _wrapped(project: Project, tgt: Target, work: Path, image: str | None) -> Path:
    """Lay out the wrapper kustomization in `work`; return the folder to build."""
    config = project.config
    shutil.copytree(project.root / DEPLOY, work / DEPLOY)
    built = f"instances/{tgt.env}/{tgt.instance_name}" if tgt.instance_name else f"overlays/{tgt.env}"
    app: dict[str, Any] = {"resources": [f"../../{DEPLOY}/{built}"]}
    if image:
        override = _image_override(pinned_name(project.root, tgt.env), image)
        if tgt.canary is None:
            app["images"] = [override]
        else:  # an images entry would also rewrite the canary's image, which has the same repository
            app["patches"] = [stable_image_patch(tgt, override)]
    resources = ["app"]
    if tgt.slug:
        app["nameSuffix"] = f"-{tgt.slug}"
        app["labels"] = _label_entries(tgt)
        if tgt.exposure.kind != "none":
            # Outside the nameSuffix: kustomize would not rename the HTTPRoute's backendRefs or the Secret.
            exposure = work / "build" / "exposure"
            _write_kustomization(
                exposure, namespace=tgt.namespace, resources=["exposure.yaml"], labels=_label_entries(tgt)
            )
            (exposure / "exposure.yaml").write_text(exposure_yaml(config, tgt), encoding="utf-8")
            resources.append("exposure")
        # What all review apps share (the wildcard certificate): labelled for the review overlay, not this app.
        if (project.root / DEPLOY / WILDCARD_DIR / "kustomization.yaml").is_file():
            resources.append(f"../{DEPLOY}/{WILDCARD_DIR}")
    _write_kustomization(work / "build" / "app", **app)
    _write_kustomization(work / "build", resources=resources)
    return work / "build"


def build_env_yaml(
    project: Project, env: str, *, image: str | None = None, slug: str | None = None, instance: str | None = None
) -> str:
    """The manifests of `env` as one multi-document YAML string (see build_env)."""
    return "---\n".join(_build_target(project, tgt, image) for tgt in targets_of(project.config, env, slug, instance))


def _build_target(project: Project, tgt: Target, image: str | None) -> str:
    if tgt.instance_name:
        overlay = instance_dir(project.root, tgt.env, tgt.instance_name)
    else:
        overlay = project.root / DEPLOY / "overlays" / tgt.env
    if not (overlay / "kustomization.yaml").is_file():
        raise MlgitError(f"{overlay}/kustomization.yaml not found", "run `mlgit render` to create the deploy/ tree")
    if image is None and tgt.slug is None:
        return kustomize(overlay).yaml
    with tempfile.TemporaryDirectory(prefix="mlgit-manifests-") as work:
        return kustomize(_wrapped(project, tgt, Path(work), image)).yaml


def build_env(
    project: Project, env: str, *, image: str | None = None, slug: str | None = None, instance: str | None = None
) -> list[dict]:
    """The Kubernetes objects of `env`: its overlay built by `kubectl kustomize`.

    `image` (repo@sha256:... or repo:tag) replaces the pinned image; `slug` (review apps only, required
    there) names a merge request's app: objects <name>-<slug>, host review.host with {slug} replaced.
    An environment with instances is each of them (`instance`: that one only), built one after the other.
    """
    text = build_env_yaml(project, env, image=image, slug=slug, instance=instance)
    return [doc for doc in YAML(typ="safe", pure=True).load_all(text) if doc]
