"""Waivers from mlgit.yaml, applied after evaluation so that they cover a team's policies too."""

from __future__ import annotations

import datetime as dt
from fnmatch import fnmatchcase

from mlgit.config.schema import Waiver


def resource_names(resource: dict[str, str] | None) -> list[str]:
    """The names a waiver's `resource` may use for this resource: Kind/name and Kind/namespace/name."""
    if not resource:
        return []
    kind, name, namespace = resource.get("kind", ""), resource.get("name", ""), resource.get("namespace", "")
    return [f"{kind}/{name}", f"{kind}/{namespace}/{name}"]


def matches(waiver: Waiver, policy_id: str, input_name: str, resource: dict[str, str] | None) -> bool:
    """Whether `waiver` covers this finding of the input document `input_name` (an environment, review or
    pipeline: what the waiver's `environment` names), ignoring its expiry. Resources match as shell globs."""
    if waiver.policy != policy_id or waiver.environment not in ("*", input_name):
        return False
    return waiver.resource == "*" or any(fnmatchcase(n, waiver.resource) for n in resource_names(resource))


def expired(waiver: Waiver, today: dt.date) -> bool:
    """A waiver applies up to and including its `expires` date."""
    return today > waiver.expires


def latest_expiry(today: dt.date, max_days: int) -> dt.date:
    """The latest `expires` a waiver may have today: `max_days` ahead."""
    return today + dt.timedelta(days=max_days)


def too_far(waiver: Waiver, today: dt.date, max_days: int) -> bool:
    """Whether `waiver` expires further ahead than allowed: such a waiver is refused, not shortened."""
    return waiver.expires > latest_expiry(today, max_days)


def describe(waiver: Waiver) -> str:
    return f"{waiver.policy} {waiver.resource} in {waiver.environment} until {waiver.expires}: {waiver.reason}"
