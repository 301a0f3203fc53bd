"""The minimal build context: only the files a Dockerfile COPYs, ADDs or bind-mounts, never .git.

Docker sends the whole directory otherwise: a model repository's .git, training data and notebooks
would travel to the engine on every build and leak into the builder's cache.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mlgit.errors import Location, MlgitError

DOCKERFILE = "Dockerfile"
_INSTRUCTION = re.compile(r"^\s*(COPY|ADD|RUN)\s+(.*)$", re.IGNORECASE | re.DOTALL)
_GLOB = re.compile(r"[*?\[]")


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, instruction) with backslash continuations joined and comments dropped."""
    start, parts = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if not parts and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if parts and line.lstrip().startswith("#"):
            continue  # comment lines inside a continuation are skipped by Docker too
        if not parts:
            start = number
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        yield start, " ".join(parts)
        parts = []
    if parts:
        yield start, " ".join(parts)


def _copy_sources(args: str) -> list[str]:
    """Context paths of `COPY/ADD [--flags] src... dest` (none when copying from a stage or image)."""
    words = json.loads(args) if args.lstrip().startswith("[") else shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return []
    paths = [w for w in words if not w.startswith("--")][:-1]
    return [p for p in paths if not re.match(r"^[a-z]+://", p)]  # ADD of a URL fetches it, not the context


def _bind_sources(args: str) -> list[str]:
    """Context paths of `RUN --mount=type=bind,source=...` mounts (those without from=)."""
    sources = []
    for word in shlex.split(args):
        if not word.startswith("--mount="):
            continue
        options = dict(o.split("=", 1) if "=" in o else (o, "") for o in word[len("--mount=") :].split(","))
        if options.get("type", "bind") == "bind" and "from" not in options:
            sources.append(options.get("source", options.get("src", ".")))
    return sources


def dockerfile_sources(dockerfile: Path) -> list[tuple[int, str]]:
    """(line, path or glob relative to the context) for everything the Dockerfile reads from its context."""
    found = []
    for line, instruction in _logical_lines(dockerfile.read_text(encoding="utf-8")):
        match = _INSTRUCTION.match(instruction)
        if not match:
            continue
        keyword, args = match.group(1).upper(), match.group(2)
        try:
            paths = _bind_sources(args) if keyword == "RUN" else _copy_sources(args)
        except ValueError as exc:
            raise MlgitError(f"cannot read {keyword}: {exc}", location=Location(dockerfile, line)) from None
        found += [(line, p) for p in paths]
    return found


class IgnoreRules:
    """.dockerignore patterns: `*`, `?`, `**`, `!exceptions`; the last matching pattern wins."""

    def __init__(self, text: str) -> None:
        self._rules: list[tuple[re.Pattern[str], bool]] = []
        for raw in text.splitlines():
            pattern = raw.strip()
            if not pattern or pattern.startswith("#"):
                continue
            keep = pattern.startswith("!")
            pattern = pattern.lstrip("!").strip().strip("/")
            pattern = "/".join(p for p in pattern.split("/") if p not in ("", "."))
            self._rules.append((re.compile(_glob_regex(pattern) + "(/.*)?$"), keep))

    def ignored(self, relative: str) -> bool:
        verdict = False
        for regex, keep in self._rules:
            if regex.match(relative):
                verdict = not keep
        return verdict


def _glob_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def context_files(root: Path, dockerfile: Path) -> list[str]:
    """Paths relative to `root` of the files the build needs, sorted; missing sources are left for
    Docker to report at the step that needs them."""
    ignore_file = root / ".dockerignore"
    rules = IgnoreRules(ignore_file.read_text(encoding="utf-8") if ignore_file.is_file() else "")
    files: set[str] = set()
    for _, source in dockerfile_sources(dockerfile):
        source = source.lstrip("/").removeprefix("./") or "."
        if os.path.normpath(source).split(os.sep)[0] == "..":
            raise MlgitError(
                f"{dockerfile.name}: COPY source {source!r} is outside the model repository",
                "the build context is the repository: move the file into it (a symlink inside it is followed)",
            )
        matches = sorted(root.glob(source)) if _GLOB.search(source) else [root / source]
        for path in matches:
            if path.is_dir():
                files.update(_files_below(root, path))
            elif path.is_file():
                files.add(path.relative_to(root).as_posix())
    return sorted(f for f in files if ".git" not in f.split("/") and not rules.ignored(f))


def _files_below(root: Path, folder: Path) -> set[str]:
    """Files under `folder`, following symlinked folders (once each: a link loop must not hang the build)."""
    found, seen = set(), set()
    for current, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        base = Path(current)
        found.update((base / n).relative_to(root).as_posix() for n in names if (base / n).is_file())
    return found


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    # COPY keeps a file's mode, and the server never runs as root: a model file written 0600 (mkstemp and
    # rename, as many exporters save) would be unreadable to uid 10001 and to OpenShift's arbitrary uid in
    # group 0. Root-owned and world-readable, executable only where its owner could execute it.
    info.mode = 0o755 if info.mode & 0o100 else 0o644
    info.mtime = int(info.mtime)  # a fractional mtime needs a PAX header, see write_context
    return info


def write_context(root: Path, dockerfile: Path, fileobj: IO[bytes]) -> list[str]:
    """Write the minimal context of `dockerfile` as a tar (Dockerfile at its root) into `fileobj`."""
    files = context_files(root, dockerfile)
    # GNU format, not Python's default PAX: `docker build -` sniffs only the first 1 KiB for a tar header, and
    # a PAX header block in front of the first file makes it read the whole archive as a Dockerfile.
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(dockerfile, arcname=DOCKERFILE, filter=_normalise)
        for relative in files:
            if relative != DOCKERFILE:
                # Symlinks are followed: a model file linked from a data folder is sent as its content.
                tar.add((root / relative).resolve(), arcname=relative, recursive=False, filter=_normalise)
    fileobj.seek(0)
    return files
