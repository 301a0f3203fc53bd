"""Instant queries against Prometheus's HTTP API (/api/v1/query), one number per query."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from mlgit.errors import MlgitError

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Measure:
    """One number and the query that gave it. value None: not measured, and `note` says why (no sample, or
    a sample that is no finite number: NaN, +Inf); a verdict never judges, nor writes, NaN or Infinity."""

    query: str
    value: float | None
    note: str | None = None


class Prometheus:
    """The Prometheus server at `url`; every error names that URL and the query."""

    def __init__(self, url: str, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=TIMEOUT_SECONDS)

    def close(self) -> None:
        self._client.close()

    def measure(self, query: str, at: float) -> Measure:
        """The value of `query` at unix time `at`: the single sample of its vector; not measured when it has
        none (no series) or the sample is NaN (a quantile of no requests) or infinite (a quantile beyond the
        histogram's highest bucket)."""
        try:
            response = self._client.get(f"{self.url}/api/v1/query", params={"query": query, "time": f"{at:.3f}"})
        except httpx.HTTPError as exc:
            raise MlgitError(
                f"cannot reach Prometheus at {self.url}: {exc}",
                "pass --prometheus URL or set monitoring.prometheus_url in mlgit.yaml to a Prometheus this job reaches",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            reason = body.get("error") or response.text[:200]
            raise MlgitError(f"Prometheus at {self.url} refused the query {query!r}: HTTP {response.status_code}: "
                             f"{reason}", "is the URL Prometheus's own (its /api/v1/query answers)?")  # fmt: skip
        return _one_value(body.get("data"), query, self.url)


def _one_value(data: Any, query: str, url: str) -> Measure:
    def malformed(what: str) -> MlgitError:
        return MlgitError(f"Prometheus at {url} answered the query {query!r} with {what}",
                          "is the URL Prometheus's own (its /api/v1/query answers)?")  # fmt: skip

    if not isinstance(data, dict) or not isinstance(data.get("result"), list | None):
        raise malformed("no data.result")
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    if not result:
        return Measure(query, None, "no sample in the window")
    if len(result) != 1:
        # Every query here aggregates with sum/max/histogram_quantile by le: more series means a label clash.
        raise MlgitError(f"Prometheus at {url} answered {len(result)} series for {query!r}, expected one")
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise malformed(f"a sample that is no [time, number] pair: {str(result[0])[:200]}") from None
    if math.isfinite(value):
        return Measure(query, value)
    return Measure(
        query,
        None,
        f"Prometheus answered {'+Inf' if value > 0 else '-Inf'}" if math.isinf(value) else "Prometheus answered NaN",
    )
