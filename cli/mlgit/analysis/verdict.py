"""Canary against stable: each check, the verdict (pass, fail, inconclusive) and its JSON form.

Inconclusive when either track served fewer than `min_requests` in the window (too little traffic to judge),
unless the canary itself is short of min_requests and its 5xx count alone already exceeds max_error_rate x
min_requests (at min_requests it would already be over the limit: fail), or when a number could not be measured
(no latency samples, or a NaN or infinite quantile); fail when any measured check is over its limit; pass
otherwise. The JSON carries every number with the PromQL that gave it, so a reviewer can rerun it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mlgit.analysis.measure import Measure, Track

Outcome = Literal["pass", "fail", "inconclusive"]
# 2: records the digests judged (`images`), which `mlgit canary` compares with the pin file.
VERDICT_VERSION = 2


@dataclass(frozen=True)
class Thresholds:
    """environments.<env>.canary.analysis, with max_drift resolved (None: drift is not compared)."""

    window: str
    min_requests: int
    max_error_rate: float
    max_p99_ratio: float
    max_p50_ratio: float
    max_drift: float | None


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None  # what the canary measured (an error rate, a ratio or a drift score)
    limit: float
    passed: bool | None  # None: not measured
    note: str


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: list[str]
    env: str
    namespace: str
    model: str
    prometheus: str
    at: float  # unix time every query was evaluated at
    images: dict[str, str | None]  # "stable" and "canary": the pin file's images the tracks ran (None: unpinned)
    thresholds: Thresholds
    stable: Track
    canary: Track
    checks: list[Check]

    def as_json(self) -> dict[str, Any]:
        def track(t: Track) -> dict[str, Any]:
            measures = {"requests": t.requests, "errors": t.errors, "p50_seconds": t.p50_seconds,
                        "p99_seconds": t.p99_seconds, "drift": t.drift}  # fmt: skip
            numbers = {key: asdict(m) for key, m in measures.items() if m is not None}
            return {**numbers, "error_rate": t.error_rate}

        return {
            "version": VERDICT_VERSION,
            "verdict": self.outcome,
            "reasons": self.reasons,
            "environment": self.env,
            "namespace": self.namespace,
            "model": self.model,
            "prometheus": self.prometheus,
            "evaluated_at": self.at,
            "images": self.images,
            "thresholds": asdict(self.thresholds),
            "stable": track(self.stable),
            "canary": track(self.canary),
            "checks": [asdict(c) for c in self.checks],
        }


def _ratio(canary: Measure, stable: Measure) -> float | None:
    if canary.value is None or stable.value is None:
        return None
    if stable.value == 0:
        return 1.0 if canary.value == 0 else None
    return canary.value / stable.value


def _why(missing: str, *measures: Measure | None) -> str:
    """`missing`, with what Prometheus answered instead of a number (a NaN or infinite quantile)."""
    notes = [f"{m.note}: {m.query}" for m in measures if m is not None and m.value is None and m.note]
    return f"{missing} ({'; '.join(notes)})" if notes else missing


def _check(name: str, value: float | None, limit: float, missing: str) -> Check:
    if value is None or not math.isfinite(value):
        return Check(name, None, limit, None, missing)
    passed = value <= limit
    return Check(name, value, limit, passed, f"{value:.4g} {'<=' if passed else '>'} {limit:g}")


def checks(thresholds: Thresholds, stable: Track, canary: Track) -> list[Check]:
    found = [
        _check("error rate", canary.error_rate, thresholds.max_error_rate, "the canary served no requests"),
        _check("p99 ratio", _ratio(canary.p99_seconds, stable.p99_seconds), thresholds.max_p99_ratio,
               _why("no p99 latency of both tracks", canary.p99_seconds, stable.p99_seconds)),
        _check("p50 ratio", _ratio(canary.p50_seconds, stable.p50_seconds), thresholds.max_p50_ratio,
               _why("no p50 latency of both tracks", canary.p50_seconds, stable.p50_seconds)),
    ]  # fmt: skip
    if thresholds.max_drift is not None:
        drift = canary.drift.value if canary.drift is not None else None
        found.append(_check("input drift", drift, thresholds.max_drift, _why("no drift score of the canary",
                                                                             canary.drift)))  # fmt: skip
    return found


def judge(thresholds: Thresholds, stable: Track, canary: Track) -> tuple[Outcome, list[Check], list[str]]:
    """The outcome, every check, and why (one line per reason)."""
    found = checks(thresholds, stable, canary)
    few = [
        f"{t.name} served {t.request_count:.0f} requests in {thresholds.window}, fewer than {thresholds.min_requests}"
        for t in (stable, canary)
        if t.request_count < thresholds.min_requests
    ]
    if few:
        # Too little traffic, but already more failures than a canary passing at min_requests may have.
        errors, allowed = canary.errors.value or 0.0, thresholds.max_error_rate * thresholds.min_requests
        if canary.request_count < thresholds.min_requests and errors > allowed:
            return "fail", found, [
                f"error rate: the canary failed {errors:.0f} requests in {thresholds.window}, more than "
                f"max_error_rate x min_requests ({allowed:g}): at min_requests it is already over the limit",
                *few,
            ]  # fmt: skip
        return "inconclusive", found, few
    failed = [f"{c.name}: {c.note}" for c in found if c.passed is False]
    if failed:
        return "fail", found, failed
    unmeasured = [f"{c.name}: {c.note}" for c in found if c.passed is None]
    if unmeasured:
        return "inconclusive", found, unmeasured
    return "pass", found, [f"{c.name}: {c.note}" for c in found]
