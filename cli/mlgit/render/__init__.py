"""The single render entry point: mlgit.yaml -> every generated file of a model repository.

Renderers plug in by appending to RENDERERS; `mlgit init`, `mlgit render` and `render --check`
all go through `plan()`, so a new renderer needs no change anywhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlgit import repo_files
from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.files import RenderedFile, write_atomic
from mlgit.manifests.render import render_manifests
from mlgit.pipelines import render as pipelines
from mlgit.render.dropped import DroppedEnvironment, dropped_environments


@dataclass(frozen=True)
class Renderer:
    """A named producer of files. Files under `owned_dirs` that it no longer produces are stale."""

    name: str
    render: Callable[[Project], Iterable[RenderedFile]]
    owned_dirs: tuple[str, ...] = field(default=())


RENDERERS: list[Renderer] = [
    Renderer("runtime-settings", repo_files.runtime_settings),
    Renderer("dockerfile", repo_files.dockerfile),
    Renderer("manifests", render_manifests, owned_dirs=("deploy",)),
    Renderer("gitlab-ci", pipelines.gitlab_ci),
]


@dataclass(frozen=True)
class Drift:
    """How the files on disk differ from what mlgit.yaml renders to."""

    changed: list[str]
    missing: list[str]
    stale: list[str]
    generated: int  # how many files mlgit.yaml renders to
    dropped: list[DroppedEnvironment] = field(default_factory=list)  # whole overlays among `stale`
    diffs: dict[str, str] = field(default_factory=dict)  # changed path -> unified diff, disk to mlgit.yaml

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.stale)


def plan(project: Project) -> dict[str, RenderedFile]:
    """Every generated file for `project`, keyed by repo-relative path."""
    files: dict[str, RenderedFile] = {}
    for renderer in RENDERERS:
        for item in renderer.render(project):
            if item.path in files:
                raise MlgitError(f"renderers disagree: {item.path} is produced twice ({renderer.name})")
            files[item.path] = item
    return files


def _stale(root: Path, files: dict[str, RenderedFile]) -> list[str]:
    stale = []
    for renderer in RENDERERS:
        for owned in renderer.owned_dirs:
            base = root / owned
            if base.is_dir():
                for path in base.rglob("*"):
                    rel = path.relative_to(root).as_posix()
                    if path.is_file() and rel not in files:
                        stale.append(rel)
    return sorted(stale)


def _diff(rel: str, current: str, wanted: str) -> str:
    lines = difflib.unified_diff(
        current.splitlines(keepends=True), wanted.splitlines(keepends=True), f"a/{rel}", f"b/{rel}"
    )
    # A file without a final newline would glue the next diff line onto its last line.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _compare(root: Path, files: dict[str, RenderedFile]) -> Drift:
    changed, missing, diffs = [], [], {}
    for rel, item in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            missing.append(rel)
            continue
        if item.seed:
            continue
        current = path.read_text(encoding="utf-8")
        if current != item.content:
            changed.append(rel)
            diffs[rel] = _diff(rel, current, item.content)
    stale = _stale(root, files)
    return Drift(
        changed=changed,
        missing=missing,
        stale=stale,
        generated=len(files),
        dropped=dropped_environments(root, stale, list(files)),
        diffs=diffs,
    )


def drift(project: Project) -> Drift:
    """Compare the repository with what it renders to, changing nothing."""
    return _compare(project.root, plan(project))


def render(project: Project, *, prune: bool = False) -> Drift:
    """Bring the repository in line with mlgit.yaml; return what was changed (before the change).

    The overlay of an environment mlgit.yaml no longer declares holds state (the image digest that
    promotion pinned), so it is deleted only with `prune`; otherwise nothing is written at all.
    """
    files = plan(project)
    before = _compare(project.root, files)
    if before.dropped and not prune:
        names = ", ".join(d.env for d in before.dropped)
        raise MlgitError(
            f"mlgit.yaml no longer declares {names}; rendering would delete "
            + ("its overlay and image pin" if len(before.dropped) == 1 else "their overlays and image pins"),
            "declare them again under `environments:` (review apps: review.enabled), or run "
            "`mlgit render --prune` to delete these overlays (git history keeps them)",
            problems=[d.describe() for d in before.dropped],
        )
    for rel in [*before.changed, *before.missing]:
        write_atomic(project.root / rel, files[rel].content)
    for rel in before.stale:
        path = project.root / rel
        path.unlink()
        parent = path.parent
        while parent != project.root and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return before
