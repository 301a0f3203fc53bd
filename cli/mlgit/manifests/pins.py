"""The image digest each environment runs: one small kustomize Component per overlay, owned by deploys.

deploy/overlays/<env>/image/kustomization.yaml holds only `images: [{name: model, newName, digest}]`
(or `newTag: unpinned` before the first build). `mlgit render` seeds it; these functions read and
change it, so pinning or promoting an image touches exactly that file.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.errors import Location, MlgitError
from mlgit.files import write_atomic

IMAGE_PLACEHOLDER = "model"
UNPINNED = "unpinned"
_DIGEST_REF = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/:-]*?)(?::[\w][\w.-]{0,127})?@(?P<digest>sha256:[0-9a-f]{64})$")


def pin_path(root: Path, env: str) -> Path:
    return root / "deploy" / "overlays" / env / "image" / "kustomization.yaml"


def _entry(root: Path, env: str) -> tuple[object, dict[str, object]]:
    path = pin_path(root, env)
    if not path.is_file():
        raise MlgitError(f"{path} not found", "run `mlgit render` to create the deploy/ tree")
    doc = read_yaml(path)
    images = doc.get("images") if isinstance(doc, dict) else None
    entries = [e for e in images or [] if isinstance(e, dict) and e.get("name") == IMAGE_PLACEHOLDER]
    if len(entries) != 1:
        raise MlgitError(
            f"expected exactly one images entry named {IMAGE_PLACEHOLDER!r}",
            "delete the file and run `mlgit render` to recreate it, then pin the image again",
            location=Location(path),
        )
    return doc, entries[0]


def split_digest_ref(image_ref: str) -> tuple[str, str]:
    """`repo[:tag]@sha256:...` -> (repo, digest); MlgitError when the reference has no digest."""
    match = _DIGEST_REF.match(image_ref)
    if not match:
        raise MlgitError(
            f"{image_ref!r} is not an image reference pinned by digest",
            "use REPOSITORY@sha256:<64 hex digits>, e.g. the digest `mlgit build` printed",
        )
    return match.group("repo"), match.group("digest")


def pinned_name(root: Path, env: str) -> str:
    """The image repository the overlay of `env` rewrites the server image to."""
    _, entry = _entry(root, env)
    return str(entry.get("newName") or IMAGE_PLACEHOLDER)


def read_pin(root: Path, env: str) -> str | None:
    """The `repo@sha256:...` image `env` runs, or None while it is unpinned."""
    _, entry = _entry(root, env)
    digest = entry.get("digest")
    return f"{entry.get('newName') or IMAGE_PLACEHOLDER}@{digest}" if digest else None


def write_pin(root: Path, env: str, image_ref: str) -> Path:
    """Pin `env` to `image_ref` (repo@sha256:...); changes only that overlay's image file, keeping comments."""
    repo, digest = split_digest_ref(image_ref)
    doc, entry = _entry(root, env)
    entry["newName"] = repo
    entry.pop("newTag", None)
    entry["digest"] = digest
    path = pin_path(root, env)
    write_atomic(path, dump_yaml(doc))
    return path
