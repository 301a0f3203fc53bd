"""The generated .gitlab-ci.yml as policies see it: jobs with `extends` merged the way GitLab does."""

from __future__ import annotations

from typing import Any

from mlgit.errors import MlgitError

# The pipeline file GitLab runs, at the repository's root: what `mlgit render` writes (pipelines/render.py)
# and what the pipeline policies judge. This floor is the lowest both reach.
GITLAB_CI = ".gitlab-ci.yml"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """GitLab's `extends` merge: mappings merge deeply, everything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(name: str, doc: dict[str, Any], seen: tuple[str, ...], unknown: set[str]) -> dict[str, Any]:
    job = doc[name]
    if not isinstance(job, dict) or "extends" not in job:
        return job
    if name in seen:
        raise MlgitError(f"{GITLAB_CI}: `extends` loops through {' -> '.join((*seen, name))}")
    parents = job["extends"] if isinstance(job["extends"], list) else [job["extends"]]
    merged: dict[str, Any] = {}
    for parent in parents:
        if parent not in doc:
            unknown.add(parent)  # defined in an included file, which is not read here
            continue
        merged = _merge(merged, _resolve(parent, doc, (*seen, name), unknown))
    own = {k: v for k, v in job.items() if k != "extends"}
    return _merge(merged, own)


def resolve_extends(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every top-level entry with its `extends` chain merged in, and the templates that were not found."""
    unknown: set[str] = set()
    resolved = {name: _resolve(name, doc, (), unknown) for name in doc}
    return resolved, sorted(unknown)
