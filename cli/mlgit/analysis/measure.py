"""The PromQL of each number the analysis compares, per track, and the numbers Prometheus gives for them.

Series are selected by the labels the ServiceMonitor gives them (`namespace`, and `mlgit_dev_track` from the
pods' `mlgit.dev/track` label) and the runtime's own `model` label, so another model in the namespace never
counts. Counters use increase() over the window, the latency quantiles histogram_quantile() over the rate of
the runtime's request-duration histogram (the whole request, as the client sees it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlgit.analysis.prometheus import Measure, Prometheus
from mlgit.config.types import prometheus_seconds
from mlgit.errors import MlgitError

TrackName = Literal["stable", "canary"]
TRACKS: tuple[TrackName, ...] = ("stable", "canary")
TRACK_LABEL = "mlgit_dev_track"


@dataclass(frozen=True)
class Track:
    name: TrackName
    requests: Measure
    errors: Measure
    p50_seconds: Measure
    p99_seconds: Measure
    drift: Measure | None  # None: input drift is not monitored

    @property
    def request_count(self) -> float:
        return self.requests.value or 0.0

    @property
    def error_rate(self) -> float | None:
        """5xx / all requests over the window; None without requests."""
        if not self.request_count:
            return None
        return (self.errors.value or 0.0) / self.request_count


def _seconds(window: str, where: str) -> float:
    try:
        return prometheus_seconds(window)
    except ValueError as exc:
        raise MlgitError(f"{where}: {exc}", "write e.g. 30s, 10m or 1h") from None


def check_window(window: str, where: str) -> str:
    _seconds(window, where)
    return window


def window_seconds(window: str) -> int:
    """A Prometheus duration in whole seconds (rounded up), e.g. for a pipeline job's `start_in`."""
    return math.ceil(_seconds(window, "window"))


def selector(namespace: str, track: TrackName, model: str) -> str:
    return f'namespace="{namespace}", {TRACK_LABEL}="{track}", model="{model}"'


def _quantile(q: float, sel: str, window: str) -> str:
    buckets = f"rate(mlgit_inference_request_duration_seconds_bucket{{{sel}}}[{window}])"
    return f"histogram_quantile({q}, sum by (le) ({buckets}))"


def measure_track(
    prometheus: Prometheus, at: float, namespace: str, model: str, track: TrackName, window: str, drift: bool
) -> Track:
    sel = selector(namespace, track, model)

    def ask(query: str) -> Measure:
        return prometheus.measure(query, at)

    return Track(
        name=track,
        requests=ask(f"sum(increase(mlgit_inference_requests_total{{{sel}}}[{window}]))"),
        # No 5xx series at all is no error, not a missing number.
        errors=ask(f'sum(increase(mlgit_inference_requests_total{{{sel}, status=~"5.."}}[{window}])) or vector(0)'),
        p50_seconds=ask(_quantile(0.5, sel, window)),
        p99_seconds=ask(_quantile(0.99, sel, window)),
        # The worst score any input feature reached in the window.
        drift=ask(f"max(max_over_time(mlgit_input_drift_score{{{sel}}}[{window}]))") if drift else None,
    )
