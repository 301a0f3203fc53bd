"""What a platform team decides for every model repository's policy check, from outside the repository.

A model repository must not lift its own guard rails, so none of this comes from mlgit.yaml or a folder
inside the repository: the pipeline passes it in the environment (a group-level CI/CD variable, which
overrides the default the generated pipeline writes; or the CI/CD component's `waiver_max_days` input),
or a flag of `mlgit policy check` does. Precedence: flag > environment > default. What mlgit.yaml says
about the same things can only make the check stricter.

- MLGIT_WAIVER_MAX_DAYS (--waiver-max-days): how far ahead of today a waiver's `expires` may be;
  a waiver expiring later is refused (it waives nothing and the report says why). Default 90.
- MLGIT_POLICY_DIRS (--policy-dir, repeatable): the platform team's policy folders, evaluated with
  mlgit's and the repository's own (`policy.extra_dirs`, which must lie inside the repository).
  os.pathsep-separated; absolute, or relative to the current directory. E.g. a folder baked into the
  team's CLI image (pipeline.cli_image), or a checkout the job makes before `mlgit policy check`.
- MLGIT_POLICY_ALLOW_WARN (--allow-warn / --no-allow-warn): whether mlgit.yaml's `policy.mode: warn`
  applies (denies reported as warnings, exit 0). Default false: the repository's warn mode is ignored,
  with a note, and denies fail.
- MLGIT_ALLOWED_REGISTRIES, MLGIT_ALLOWED_ISSUERS, MLGIT_ALLOWED_DOMAINS (--allowed-registry,
  --allowed-issuer, --allowed-domain, each repeatable): the platform's lists. When one is set, what
  mlgit.yaml allows (policy.allowed_registries, else image.repository's registry; policy.allowed_issuers,
  else the configured issuers; `domain`) is narrowed to what lies inside it, never widened. Separated by
  commas or whitespace; unset or empty: no platform list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlgit.errors import ExitCode, MlgitError
from mlgit.yes_no import yes_no

WAIVER_MAX_DAYS_ENV = "MLGIT_WAIVER_MAX_DAYS"
POLICY_DIRS_ENV = "MLGIT_POLICY_DIRS"
ALLOW_WARN_ENV = "MLGIT_POLICY_ALLOW_WARN"
ALLOWED_REGISTRIES_ENV = "MLGIT_ALLOWED_REGISTRIES"
ALLOWED_ISSUERS_ENV = "MLGIT_ALLOWED_ISSUERS"
ALLOWED_DOMAINS_ENV = "MLGIT_ALLOWED_DOMAINS"
DEFAULT_WAIVER_MAX_DAYS = 90
DEFAULT_ALLOW_WARN = False

Mode = Literal["enforce", "warn"]


@dataclass(frozen=True)
class PlatformList:
    """One of the platform's allowed lists, and where it came from (for messages)."""

    values: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class PlatformSettings:
    waiver_max_days: int = DEFAULT_WAIVER_MAX_DAYS
    waiver_max_days_source: str = "the default"
    """Where waiver_max_days came from, for the message that refuses a waiver."""
    policy_dirs: tuple[Path, ...] = ()
    allow_warn: bool = DEFAULT_ALLOW_WARN
    allow_warn_source: str = "the default"
    allowed_registries: PlatformList | None = None
    """None: no platform list, the repository's own applies."""
    allowed_issuers: PlatformList | None = None
    allowed_domains: PlatformList | None = None

    def mode(self, requested: Mode) -> Mode:
        """The mode the check runs in: mlgit.yaml's `warn` only where the platform allows it."""
        return "warn" if requested == "warn" and self.allow_warn else "enforce"


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


def _flag(text: str, source: str) -> bool:
    value = yes_no(text)
    if value is None:
        raise MlgitError(
            f"{source} is {text!r}, not true or false",
            f"set {ALLOW_WARN_ENV} to true or false (or pass --allow-warn / --no-allow-warn)",
            exit_code=ExitCode.USAGE,
        )
    return value


def _platform_list(flag: Sequence[str], option: str, text: str, variable: str) -> PlatformList | None:
    """The flag's values, else those of the variable's `text`; None when neither names any."""
    if flag:
        return PlatformList(tuple(flag), option)
    values = tuple(v for v in re.split(r"[,\s]+", text) if v)
    return PlatformList(values, variable) if values else None


def platform_settings(
    environ: Mapping[str, str],
    *,
    waiver_max_days: int | None = None,
    policy_dirs: Sequence[Path] = (),
    allow_warn: bool | None = None,
    allowed_registries: Sequence[str] = (),
    allowed_issuers: Sequence[str] = (),
    allowed_domains: Sequence[str] = (),
) -> PlatformSettings:
    """The settings from flags (the keyword arguments), else from `environ`, else the defaults."""
    if waiver_max_days is not None:
        days, source = _max_days(str(waiver_max_days), "--waiver-max-days"), "--waiver-max-days"
    elif environ.get(WAIVER_MAX_DAYS_ENV, "").strip():
        days = _max_days(environ[WAIVER_MAX_DAYS_ENV], WAIVER_MAX_DAYS_ENV)
        source = WAIVER_MAX_DAYS_ENV
    else:
        days, source = DEFAULT_WAIVER_MAX_DAYS, "the default"
    dirs = list(policy_dirs) or [Path(p) for p in environ.get(POLICY_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    if allow_warn is not None:
        warn, warn_source = allow_warn, "--allow-warn" if allow_warn else "--no-allow-warn"
    elif environ.get(ALLOW_WARN_ENV, "").strip():
        warn, warn_source = _flag(environ[ALLOW_WARN_ENV], ALLOW_WARN_ENV), ALLOW_WARN_ENV
    else:
        warn, warn_source = DEFAULT_ALLOW_WARN, "the default"
    return PlatformSettings(
        waiver_max_days=days,
        waiver_max_days_source=source,
        policy_dirs=tuple(dirs),
        allow_warn=warn,
        allow_warn_source=warn_source,
        allowed_registries=_platform_list(
            allowed_registries, "--allowed-registry", environ.get(ALLOWED_REGISTRIES_ENV, ""), ALLOWED_REGISTRIES_ENV
        ),
        allowed_issuers=_platform_list(
            allowed_issuers, "--allowed-issuer", environ.get(ALLOWED_ISSUERS_ENV, ""), ALLOWED_ISSUERS_ENV
        ),
        allowed_domains=_platform_list(
            allowed_domains, "--allowed-domain", environ.get(ALLOWED_DOMAINS_ENV, ""), ALLOWED_DOMAINS_ENV
        ),
    )


def registry_within(entry: str, allowed: str) -> bool:
    """Whether every image `entry` (a registry, or a registry path prefix) admits is one `allowed` admits."""
    return entry == allowed or entry.startswith(allowed + "/")


def domain_within(domain: str, allowed: str) -> bool:
    """Whether every host inside `domain` is inside `allowed`."""
    return domain == allowed or domain.endswith("." + allowed)


def issuer_within(issuer: str, allowed: str) -> bool:
    return issuer == allowed


def narrow(
    own: Sequence[str], platform: PlatformList | None, within: Callable[[str, str], bool]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The repository's list narrowed to the platform's (never widened), and each repository entry that
    does not lie inside it with what took its place: the platform's entries inside it, if any."""
    if platform is None:
        return list(own), []
    kept: list[str] = []
    changed = []
    for entry in own:
        if any(within(entry, p) for p in platform.values):
            inside = [entry]
        else:
            inside = [p for p in platform.values if within(p, entry)]
            changed.append((entry, inside))
        kept += [e for e in inside if e not in kept]
    return kept, changed
