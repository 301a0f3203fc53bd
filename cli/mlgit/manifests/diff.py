"""The rendered-manifest diff of a pin change, for `mlgit manifests diff` and the promotion MR's description.

`mlgit manifests diff --env staging --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA"` prints `base_diff`: how the
environment's manifests change between the pin at the base commit and the pin in the working tree (the
merge request's head). `mlgit promote` shows `manifest_diff` of the pin it proposes.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.files import write_atomic
from mlgit.manifests.build import build_env_yaml
from mlgit.manifests.pins import UNPINNED, pin_in_text, pin_path, pinned_name, read_pin
from mlgit.promote.git import Git


def rendered(project: Project, env: str, pin: str | None) -> str:
    """The manifests of `env` with `pin` (None: unpinned), both sides built the same way so only the pin differs."""
    return build_env_yaml(project, env, image=pin or f"{pinned_name(project.root, env)}:{UNPINNED}")


def manifest_diff(project: Project, env: str, before: str | None, after: str | None) -> str:
    """Unified diff of the manifests of `env` pinned to `before` and to `after` ('' when they are the same)."""
    lines = difflib.unified_diff(
        rendered(project, env, before).splitlines(keepends=True),
        rendered(project, env, after).splitlines(keepends=True),
        fromfile=f"{env} pinned to {before or UNPINNED}",
        tofile=f"{env} pinned to {after or UNPINNED}",
    )
    return "".join(lines)


def base_diff(project: Project, env: str, base: str) -> str:
    """The diff between the pin of `env` at commit `base` and the pin in the working tree."""
    try:
        project.config.environment(env)
    except KeyError as exc:
        raise MlgitError(str(exc.args[0])) from None
    git = Git(project.root, "origin", os.environ)
    # A base that is no commit (a typo, an unset variable) would otherwise read as "no pin there".
    git.run("rev-parse", "--verify", "--end-of-options", f"{base}^{{commit}}", what=f"find the base commit {base!r}")
    text = git.show(base, str(pin_path(Path(), env)))
    before = pin_in_text(text, env, f"{pin_path(Path(), env)} at {base}") if text is not None else None
    return manifest_diff(project, env, before, read_pin(project.root, env))


def write_diff(path: Path, text: str) -> None:
    """`--output`: the diff as a file (its folders created), for the job's artifacts."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise MlgitError(
            f"cannot write {path}: {exc.strerror or exc}",
            "--output takes the path of a file; missing folders are created",
        ) from None
