"""The rendered-manifest diff of a promotion, for the MR description and the promotion MR's pipeline.

`python -m mlgit.promote.diff --env staging --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA" [--output FILE] [DIR]`
prints how the environment's manifests change between the pin at the base commit and the pin in the
working tree (the merge request's head). Exit 0 whatever the diff; 1 on an error.
"""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path

from mlgit.config.load import Project, load_project
from mlgit.console import out, print_error
from mlgit.errors import MlgitError
from mlgit.manifests.build import build_env_yaml
from mlgit.manifests.pins import UNPINNED, pin_path, pinned_name, read_pin
from mlgit.promote.git import Git
from mlgit.promote.plan import pin_in


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
    text = git.show(base, str(pin_path(Path(), env)))
    before = pin_in(text, env) if text is not None else None
    return manifest_diff(project, env, before, read_pin(project.root, env))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlgit.promote.diff", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=Path("."), help="model repository")
    parser.add_argument("--env", required=True, help="environment whose pin the merge request changes")
    parser.add_argument("--base", required=True, help="commit to compare with ($CI_MERGE_REQUEST_DIFF_BASE_SHA)")
    parser.add_argument("--output", type=Path, help="also write the diff to this file")
    args = parser.parse_args(argv)
    try:
        text = base_diff(load_project(args.directory), args.env, args.base)
    except MlgitError as error:
        print_error(error)
        return int(error.exit_code)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    out.print(text or f"the rendered manifests of {args.env} do not change\n", end="", markup=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
