"""The rendered-manifest diff of a pin change, for `mlgit manifests diff` and the promotion MR's description.

`mlgit manifests diff --env staging --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA"` prints `base_diff`: how the
environment's manifests change between the pin file at the base commit and the pin file in the working tree
(the merge request's head), whole: the stable image and a canary's image, weight and replicas. `mlgit promote`
shows `manifest_diff` of the stable pin it proposes.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlgit.config.load import Project
from mlgit.errors import MlgitError
from mlgit.files import write_atomic
from mlgit.manifests.build import build_env_yaml
from mlgit.manifests.pins import UNPINNED, pin_in_text, pin_path, pinned_name
from mlgit.manifests.render import DEPLOY
from mlgit.promote.git import Git


def rendered(project: Project, env: str, pin: str | None) -> str:
    """The manifests of `env` with `pin` (None: unpinned), both sides built the same way so only the pin differs."""
    return build_env_yaml(project, env, image=pin or f"{pinned_name(project.root, env)}:{UNPINNED}")


def manifest_diff(project: Project, env: str, before: str | None, after: str | None) -> str:
    """Unified diff of the manifests of `env` pinned to `before` and to `after` ('' when they are the same)."""
    before_text, after_text = rendered(project, env, before), rendered(project, env, after)
    return _unified(
        before_text, after_text, f"{env} pinned to {before or UNPINNED}", f"{env} pinned to {after or UNPINNED}"
    )


def _unified(before: str, after: str, fromfile: str, tofile: str) -> str:
    """A unified diff of two texts ('' when they are the same)."""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile, tofile)
    return "".join(lines)


@contextmanager
def with_pin_file(project: Project, env: str, text: bytes) -> Iterator[Project]:
    """`project` as it would be with `env`'s pin file holding `text`: deploy/ and the repository's own policy
    folders copied to a temporary root (the working tree is never touched)."""
    with tempfile.TemporaryDirectory(prefix="mlgit-proposed-") as tmp:
        root = Path(tmp)
        for folder in [DEPLOY, *project.config.policy.extra_dirs]:
            if (project.root / folder).is_dir():
                shutil.copytree(project.root / folder, root / folder)
        pin_path(root, env).write_bytes(text)
        yield dataclasses.replace(project, root=root)


def _built(project: Project, env: str, text: bytes) -> str:
    with with_pin_file(project, env, text) as pinned:
        return build_env_yaml(pinned, env)


def base_diff(project: Project, env: str, base: str) -> str:
    """The diff between the manifests of `env` with its pin file as commit `base` has it and as the working
    tree has it (both built the same way, so only the pin file's changes show)."""
    try:
        project.config.environment(env)
    except KeyError as exc:
        raise MlgitError(str(exc.args[0])) from None
    git = Git(project.root, "origin", os.environ)
    # A base that is no commit (a typo, an unset variable) would otherwise read as "no pin there".
    git.run("rev-parse", "--verify", "--end-of-options", f"{base}^{{commit}}", what=f"find the base commit {base!r}")
    where = pin_path(Path(), env)
    text = git.show(base, str(where))
    after = pin_path(project.root, env).read_bytes()
    if text is None:  # a new environment: compared with itself unpinned
        return manifest_diff(project, env, None, pin_in_text(after, env, str(where)))
    pin_in_text(text, env, f"{where} at {base}")  # a malformed file at the base is named there
    before_text, after_text = _built(project, env, text), _built(project, env, after)
    return _unified(before_text, after_text, f"{env} with {where} at {base}", f"{env} with {where} in the working tree")


def write_diff(path: Path, text: str) -> None:
    """`--output`: the diff as a file (its folders created), for the job's artifacts."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise MlgitError(
            f"cannot write {path}: {exc.strerror or exc}",
            "--output takes the path of a file; missing folders are created",
        ) from None
