"""The canary state of an environment: both images, the canary's share of requests and its replicas.

It lives in the environment's pin file (deploy/overlays/<env>/image/kustomization.yaml, mlgit.manifests.pins)
next to the stable image, so that "canary at N%", "promote the canary" and "abort" each change that one file:

    images:       `model` (the stable image, as pins.read_pin/write_pin see it) and `model-canary`
    replicas:     one entry, the canary Deployment's replica count
    configMapGenerator: one ConfigMap whose literals `canary-weight=N` and `stable-weight=100-N` the overlay's
                  kustomize replacements copy into the route (HTTPRoute backend weights, the canary Ingress's
                  canary-weight annotation, Route alternateBackends), so `render --check` never sees the weight;
                  and `mirror-percent=0|100`, derived from the replicas (mirror only to a canary with pods).

`mlgit render` seeds these parts (mlgit.manifests.canary); the functions here read and change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from mlgit.config.yamlio import dump_yaml, position
from mlgit.errors import Location, MlgitError
from mlgit.files import write_atomic
from mlgit.manifests.pins import IMAGE_PLACEHOLDER, UNPINNED, at_text, image_entry, pin_path, split_digest_ref

CANARY_IMAGE = f"{IMAGE_PLACEHOLDER}-canary"
CANARY_WEIGHT = "canary-weight"
STABLE_WEIGHT = "stable-weight"
MIRROR_PERCENT = "mirror-percent"
MAX_WEIGHT = 100


class _Keep:
    """The type of KEEP: "leave this image as the file has it"."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


@dataclass(frozen=True)
class CanaryState:
    """What a canary environment's pin file says: images as `repo@sha256:...` (None: unpinned), the canary's
    share of requests in percent (the stable gets the rest) and the canary Deployment's replicas."""

    stable: str | None
    canary: str | None
    weight: int
    replicas: int

    @property
    def running(self) -> bool:
        """Whether a canary runs: one definition for promote, analyze, status and the canary_* policies
        (policies/canary_split.rego `running_canary`): the canary is pinned by digest and has pods or traffic."""
        return self.canary is not None and (self.replicas > 0 or self.weight > 0)


def _where(path: Path, doc: Any, *keys: str | int) -> Location:
    found = position(doc, keys)
    return Location(path, found[0], found[1]) if found else Location(path)


def _no_canary(path: Path, env: str) -> MlgitError:
    return MlgitError(
        f"the {env} environment has no canary state (no images entry named {CANARY_IMAGE!r})",
        f"set environments.{env}.canary in mlgit.yaml and run `mlgit render`, which adds it to this file",
        location=Location(path),
    )


def _parts(root: Path, env: str) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any], list[Any]]:
    """(document, stable images entry, canary images entry, replicas entry, weight literals)."""
    path = pin_path(root, env)
    doc, stable = image_entry(root, env)
    canaries = [e for e in doc.get("images") or [] if isinstance(e, dict) and e.get("name") == CANARY_IMAGE]
    if not canaries:
        raise _no_canary(path, env)
    if len(canaries) > 1:
        raise MlgitError(
            f"expected exactly one images entry named {CANARY_IMAGE!r}",
            "keep one and delete the others",
            location=_where(path, doc, "images"),
        )
    canary = canaries[0]
    replicas = doc.get("replicas")
    if not (isinstance(replicas, list) and len(replicas) == 1 and isinstance(replicas[0], dict)):
        raise MlgitError(
            "expected `replicas:` with exactly one entry, the canary Deployment's",
            "delete the canary parts of this file and run `mlgit render` to add them again",
            location=_where(path, doc, "replicas"),
        )
    generators = doc.get("configMapGenerator")
    first = generators[0] if isinstance(generators, list) and len(generators) == 1 else None
    literals = first.get("literals") if isinstance(first, dict) else None
    if not isinstance(literals, list):
        raise MlgitError(
            "expected `configMapGenerator:` with exactly one entry holding the canary weight literals",
            "delete the canary parts of this file and run `mlgit render` to add them again",
            location=_where(path, doc, "configMapGenerator"),
        )
    return doc, stable, canary, replicas[0], literals


def _image(entry: dict[str, Any]) -> str | None:
    digest = entry.get("digest")
    return f"{entry.get('newName') or IMAGE_PLACEHOLDER}@{digest}" if digest else None


def _canary_image(path: Path, doc: Any, entry: dict[str, Any]) -> str | None:
    """The canary image; a canary pinned by tag is an error, not "no canary": it would run a mutable image
    that promotion could not copy to the stable pin by digest."""
    tag = entry.get("newTag")
    if not entry.get("digest") and tag is not None and tag != UNPINNED:
        index = next(i for i, e in enumerate(doc["images"]) if e is entry)
        raise MlgitError(
            f"the canary image {CANARY_IMAGE!r} is pinned by tag {tag!r}; a canary must be pinned by digest",
            f"replace `newTag: {tag}` with `digest: sha256:...` (e.g. the digest `mlgit build` printed), "
            f"or set `newTag: {UNPINNED}` for no canary",
            location=_where(path, doc, "images", index, "newTag"),
        )
    return _image(entry)


def _index(path: Path, doc: Any, literals: list[Any], key: str) -> int:
    """The index in `literals` of the one literal `key=...`, whatever its value."""
    indices = [i for i, item in enumerate(literals) if isinstance(item, str) and item.split("=", 1)[0] == key]
    if len(indices) != 1:
        raise MlgitError(
            f"expected exactly one literal {key}=N (0-{MAX_WEIGHT})",
            "delete the canary parts of this file and run `mlgit render` to add them again",
            location=_where(path, doc, "configMapGenerator", 0, "literals"),
        )
    return indices[0]


def _literal(path: Path, doc: Any, literals: list[Any], key: str) -> tuple[int, int]:
    """(index in `literals`, value) of the literal `key=N`; MlgitError at its line unless N is 0..100."""
    index = _index(path, doc, literals, key)
    value = literals[index].split("=", 1)[1].strip()
    if not (value.isdigit() and int(value) <= MAX_WEIGHT):
        raise MlgitError(
            f"{key} must be a whole number from 0 to {MAX_WEIGHT}, not {value!r}",
            location=_where(path, doc, "configMapGenerator", 0, "literals", index),
        )
    return index, int(value)


def _weight(path: Path, doc: Any, literals: list[Any]) -> int:
    _, weight = _literal(path, doc, literals, CANARY_WEIGHT)
    index, stable = _literal(path, doc, literals, STABLE_WEIGHT)
    if weight + stable != MAX_WEIGHT:
        raise MlgitError(
            f"{CANARY_WEIGHT} {weight} and {STABLE_WEIGHT} {stable} do not add up to {MAX_WEIGHT}",
            f"set {STABLE_WEIGHT}={MAX_WEIGHT - weight}, or use `mlgit canary` to change the weight",
            location=_where(path, doc, "configMapGenerator", 0, "literals", index),
        )
    return weight


def _count(path: Path, doc: Any, entry: dict[str, Any]) -> int:
    count = entry.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise MlgitError(
            f"the canary replicas count must be a whole number >= 0, not {count!r}",
            location=_where(path, doc, "replicas", 0, "count"),
        )
    return count


def set_mirror_percent(literals: list[Any], replicas: Any) -> None:
    """`mirror-percent` as the replicas make it: a Gateway mirrors requests only to a canary that has pods."""
    value = f"{MIRROR_PERCENT}={MAX_WEIGHT if isinstance(replicas, int) and replicas > 0 else 0}"
    index = next((i for i, item in enumerate(literals) if str(item).split("=", 1)[0] == MIRROR_PERCENT), None)
    if index is None:
        literals.append(value)
    elif literals[index] != value:
        literals[index] = value


def has_canary(root: Path, env: str) -> bool:
    """Whether `env`'s pin file holds canary state (an images entry named model-canary)."""
    doc, _ = image_entry(root, env)
    return any(isinstance(e, dict) and e.get("name") == CANARY_IMAGE for e in doc.get("images") or [])


def read_canary(root: Path, env: str) -> CanaryState:
    """The canary state of `env`; MlgitError naming the file and line when it is missing or malformed."""
    path = pin_path(root, env)
    doc, stable, canary, replicas, literals = _parts(root, env)
    return CanaryState(
        _image(stable), _canary_image(path, doc, canary), _weight(path, doc, literals), _count(path, doc, replicas)
    )


def _pin(entry: Any, ref: str | None) -> None:
    """Point an images entry at `ref` (None: unpinned). The entry's last key carries the comment of what
    follows it in the file (ruamel keeps it there), so it moves to the key that replaces it."""
    old, new, value = ("digest", "newTag", UNPINNED) if ref is None else ("newTag", "digest", "")
    if ref is not None:
        repo, value = split_digest_ref(ref)
        entry["newName"] = repo
    comment = entry.ca.items.pop(old, None)
    entry.pop(old, None)
    entry[new] = value
    if comment is not None:
        entry.ca.items[new] = comment


def _checked(name: str, value: int, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise MlgitError(f"the canary {name} must be a whole number {bounds}, not {value!r}")
    return value


def write_canary(
    root: Path,
    env: str,
    *,
    stable: str | _Keep | None = KEEP,
    canary: str | _Keep | None = KEEP,
    weight: int | None = None,
    replicas: int | None = None,
) -> Path:
    """Change `env`'s canary state (images as repo@sha256:..., None unpins; KEEP and None leave a field as it
    is) in its pin file alone, keeping comments. The fields it keeps are checked before anything is written;
    the ones it overwrites are not, so `mlgit canary abort` (weight 0, replicas 0) repairs a file whose weight
    or count is broken, and stops a canary pinned by tag: a stopped canary runs no image."""
    path = pin_path(root, env)
    doc, stable_entry, canary_entry, replicas_entry, literals = _parts(root, env)
    if weight is None:
        _weight(path, doc, literals)
    if replicas is None:
        _count(path, doc, replicas_entry)
    if isinstance(canary, _Keep) and not (weight == 0 and replicas == 0):
        _canary_image(path, doc, canary_entry)
    if not isinstance(stable, _Keep):
        _pin(stable_entry, stable)
    if not isinstance(canary, _Keep):
        _pin(canary_entry, canary)
    if weight is not None:
        _checked("weight", weight, 0, MAX_WEIGHT)
        literals[_index(path, doc, literals, CANARY_WEIGHT)] = f"{CANARY_WEIGHT}={weight}"
        literals[_index(path, doc, literals, STABLE_WEIGHT)] = f"{STABLE_WEIGHT}={MAX_WEIGHT - weight}"
    if replicas is not None:
        replicas_entry["count"] = _checked("replicas", replicas, 0, None)
        set_mirror_percent(literals, replicas)
    write_atomic(path, dump_yaml(doc))
    return path


def canary_in_text(text: bytes, env: str, where: str) -> CanaryState:
    """The canary state the pin file's `text` holds; `where` names the file (e.g. at a commit) in errors."""
    return at_text(text, env, where, lambda root: read_canary(root, env))[0]


def canary_text(
    text: bytes,
    env: str,
    where: str,
    *,
    stable: str | _Keep | None = KEEP,
    canary: str | _Keep | None = KEEP,
    weight: int | None = None,
    replicas: int | None = None,
) -> bytes:
    """The pin file's `text` with the changes write_canary makes (comments kept)."""

    def change(root: Path) -> Path:
        return write_canary(root, env, stable=stable, canary=canary, weight=weight, replicas=replicas)

    return at_text(text, env, where, change)[1]
