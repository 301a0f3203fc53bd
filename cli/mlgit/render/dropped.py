"""Overlays of environments that mlgit.yaml no longer declares: state that render must not drop silently.

An overlay's image pin (deploy/overlays/<env>/image/kustomization.yaml) is written by `mlgit render` once
and owned by promotion afterwards: it records which digest runs in that environment, and no file
regenerates it. Removing an environment from mlgit.yaml (or renaming it) must not delete it unasked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlgit.errors import MlgitError
from mlgit.manifests.pins import pin_path, read_pin

_OVERLAYS = "deploy/overlays/"


@dataclass(frozen=True)
class DroppedEnvironment:
    """An overlay folder that rendering would delete as a whole."""

    env: str
    pin: str | None  # `repo@sha256:...` the overlay pins; None while unpinned or unreadable
    files: int

    def describe(self) -> str:
        folder = f"{_OVERLAYS}{self.env}/"
        if self.pin:
            return f"{folder} pins {self.pin} ({self.files} files)"
        return f"{folder} ({self.files} files, no image pinned)"


def _env_of(rel: str) -> str | None:
    return rel[len(_OVERLAYS) :].split("/", 1)[0] if rel.startswith(_OVERLAYS) and rel.count("/") > 2 else None


def dropped_environments(root: Path, stale: list[str], planned: list[str]) -> list[DroppedEnvironment]:
    """Environments whose whole overlay is among the `stale` files (none of its files is still planned)."""
    kept = {_env_of(rel) for rel in planned}
    counts: dict[str, int] = {}
    for rel in stale:
        env = _env_of(rel)
        if env is not None and env not in kept:
            counts[env] = counts.get(env, 0) + 1
    dropped = []
    for env, files in sorted(counts.items()):
        pin = None
        if pin_path(root, env).is_file():
            try:
                pin = read_pin(root, env)
            except MlgitError:
                pin = None  # a damaged pin file is still reported as the overlay's file
        dropped.append(DroppedEnvironment(env, pin, files))
    return dropped
