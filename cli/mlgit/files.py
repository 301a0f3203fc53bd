"""Rendered files and how they reach disk: only changed bytes are written, atomically."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RenderedFile:
    """One file a renderer produces, at a POSIX path relative to the model repository.

    A `seed` file is state that other commands own after it first exists (e.g. the image digest pinned
    in an overlay, which promotion changes): render writes it only when it is missing, and
    `render --check` only checks that it exists.
    """

    path: str
    content: str
    seed: bool = False


def write_atomic(path: Path, content: str) -> None:
    """Write `content` to `path` via a temporary file + rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
