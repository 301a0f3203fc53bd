"""The image digest each environment runs: one small kustomize Component per overlay, owned by deploys.

deploy/overlays/<env>/image/kustomization.yaml holds only `images: [{name: model, newName, digest}]`
(or `newTag: unpinned` before the first build). `mlgit render` seeds it; these functions read and
change it, so pinning or promoting an image touches exactly that file.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.errors import Location, MlgitError
from mlgit.files import write_atomic

IMAGE_PLACEHOLDER = "model"
UNPINNED = "unpinned"
T = TypeVar("T")
_DIGEST_REF = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/:-]*?)(?::[\w][\w.-]{0,127})?@(?P<digest>sha256:[0-9a-f]{64})$")


def pin_path(root: Path, env: str) -> Path:
    return root / "deploy" / "overlays" / env / "image" / "kustomization.yaml"


def image_entry(root: Path, env: str, name: str = IMAGE_PLACEHOLDER) -> tuple[Any, dict[str, object]]:
    """The pin file's parsed document and its `images` entry named `name` (MlgitError unless exactly one)."""
    path = pin_path(root, env)
    if not path.is_file():
        raise MlgitError(f"{path} not found", "run `mlgit render` to create the deploy/ tree")
    doc = read_yaml(path)
    images = doc.get("images") if isinstance(doc, dict) else None
    entries = [e for e in images or [] if isinstance(e, dict) and e.get("name") == name]
    if len(entries) != 1:
        raise MlgitError(
            f"expected exactly one images entry named {name!r}",
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
    _, entry = image_entry(root, env)
    return str(entry.get("newName") or IMAGE_PLACEHOLDER)


def read_pin(root: Path, env: str) -> str | None:
    """The `repo@sha256:...` image `env` runs, or None while it is unpinned."""
    _, entry = image_entry(root, env)
    digest = entry.get("digest")
    return f"{entry.get('newName') or IMAGE_PLACEHOLDER}@{digest}" if digest else None


def write_pin(root: Path, env: str, image_ref: str) -> Path:
    """Pin `env` to `image_ref` (repo@sha256:...); changes only that overlay's image file, keeping comments."""
    repo, digest = split_digest_ref(image_ref)
    doc, entry = image_entry(root, env)
    entry["newName"] = repo
    entry.pop("newTag", None)
    entry["digest"] = digest
    path = pin_path(root, env)
    write_atomic(path, dump_yaml(doc))
    return path


def at_text(text: bytes, env: str, where: str, action: Callable[[Path], T]) -> tuple[T, bytes]:
    """Run `action(root)` on a temporary repository whose pin file for `env` holds `text` (a pin file as a
    commit holds it); return its result and the file's text afterwards. Errors name `where`, the file at
    that commit, not the temporary copy the reading goes through."""
    with tempfile.TemporaryDirectory(prefix="mlgit-pin-") as tmp:
        root = Path(tmp)
        copy = pin_path(root, env)
        copy.parent.mkdir(parents=True)
        copy.write_bytes(text)
        try:
            return action(root), copy.read_bytes()
        except MlgitError as exc:
            line = exc.location.line if exc.location is not None else None
            place = f"{where}, line {line}" if line is not None else where
            raise MlgitError(f"{place}: {exc.message}", exc.hint, problems=exc.problems) from None


def _at_commit(text: bytes, env: str, where: str, change: str | None) -> tuple[str | None, bytes]:
    """Read (and with `change`, pin) a pin file's text as a commit holds it."""

    def act(root: Path) -> str | None:
        if change is not None:
            write_pin(root, env, change)
        return read_pin(root, env)

    return at_text(text, env, where, act)


def pin_in_text(text: bytes, env: str, where: str) -> str | None:
    """The image the pin file's `text` pins (None: unpinned); `where` names the file in errors."""
    return _at_commit(text, env, where, None)[0]


def pinned_text(text: bytes, env: str, image: str, where: str) -> bytes:
    """The pin file's `text` with `image` pinned (comments kept), as write_pin writes it."""
    return _at_commit(text, env, where, image)[1]
