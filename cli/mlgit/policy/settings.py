"""What a platform team decides for every model repository's policy check, from outside the repository.

A model repository must not lift its own guard rails, so none of this comes from mlgit.yaml or a folder
inside the repository: the pipeline passes it in the environment (a group-level CI/CD variable, or the
CI/CD component's `waiver_max_days` input), or a flag does. Precedence: flag > environment > default.

- MLGIT_WAIVER_MAX_DAYS (--waiver-max-days): how far ahead of today a waiver's `expires` may be;
  a waiver expiring later is refused (it waives nothing and the report says why). Default 90.
- MLGIT_POLICY_DIRS (--policy-dir, repeatable): the platform team's policy folders, evaluated with
  mlgit's and the repository's own (`policy.extra_dirs`, which must lie inside the repository).
  os.pathsep-separated; absolute, or relative to the current directory. E.g. a folder baked into the
  team's CLI image (pipeline.cli_image), or a checkout the job makes before `mlgit policy check`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgit.errors import ExitCode, MlgitError

WAIVER_MAX_DAYS_ENV = "MLGIT_WAIVER_MAX_DAYS"
POLICY_DIRS_ENV = "MLGIT_POLICY_DIRS"
DEFAULT_WAIVER_MAX_DAYS = 90


@dataclass(frozen=True)
class PlatformSettings:
    waiver_max_days: int = DEFAULT_WAIVER_MAX_DAYS
    waiver_max_days_source: str = "the default"
    """Where waiver_max_days came from, for the message that refuses a waiver."""
    policy_dirs: tuple[Path, ...] = ()


def _max_days(text: str, source: str) -> int:
    try:
        days = int(text.strip())
    except ValueError:
        days = -1
    if days < 0:
        raise MlgitError(
            f"{source} is {text!r}, not a number of days",
            f"set {WAIVER_MAX_DAYS_ENV} (or --waiver-max-days) to a whole number >= 0, e.g. 90",
            exit_code=ExitCode.USAGE,
        )
    return days


def platform_settings(
    environ: Mapping[str, str], *, waiver_max_days: int | None = None, policy_dirs: Sequence[Path] = ()
) -> PlatformSettings:
    """The settings from flags (`waiver_max_days`, `policy_dirs`), else from `environ`, else the defaults."""
    if waiver_max_days is not None:
        days, source = _max_days(str(waiver_max_days), "--waiver-max-days"), "--waiver-max-days"
    elif environ.get(WAIVER_MAX_DAYS_ENV, "").strip():
        days = _max_days(environ[WAIVER_MAX_DAYS_ENV], WAIVER_MAX_DAYS_ENV)
        source = WAIVER_MAX_DAYS_ENV
    else:
        days, source = DEFAULT_WAIVER_MAX_DAYS, "the default"
    dirs = list(policy_dirs) or [Path(p) for p in environ.get(POLICY_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return PlatformSettings(days, source, tuple(dirs))
