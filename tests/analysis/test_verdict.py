"""The verdict from numbers: each check against its limit, too little traffic, numbers Prometheus lacked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlgit.analysis.measure import Measure, Track, TrackName, check_window
from mlgit.analysis.prometheus import Prometheus
from mlgit.analysis.verdict import Thresholds, judge
from mlgit.config.canary import CanaryConfig
from mlgit.errors import MlgitError
from tests.conftest import free_port

LIMITS = Thresholds("10m", 100, 0.01, 1.25, 1.25, None)


def track(name: TrackName, requests: float | None, errors: float | None, p50: float | None, p99: float | None,
          drift: float | None = None) -> Track:  # fmt: skip
    def m(value: float | None) -> Measure:
        return Measure(f"query of {name}", value)

    return Track(name, m(requests), m(errors), m(p50), m(p99), m(drift) if drift is not None else None)


STABLE = track("stable", 1000, 2, 0.010, 0.050)


def test_a_canary_like_the_stable_passes() -> None:
    outcome, checks, reasons = judge(LIMITS, STABLE, track("canary", 200, 1, 0.011, 0.055))
    assert outcome == "pass", reasons
    assert [(c.name, c.passed) for c in checks] == [("error rate", True), ("p99 ratio", True), ("p50 ratio", True)]
    assert checks[0].value == pytest.approx(0.005)
    assert checks[1].value == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("canary", "failed"),
    [
        (track("canary", 200, 3, 0.010, 0.050), "error rate: 0.015 > 0.01"),
        (track("canary", 200, 0, 0.010, 0.070), "p99 ratio: 1.4 > 1.25"),
        (track("canary", 200, 0, 0.013, 0.050), "p50 ratio: 1.3 > 1.25"),
    ],
)
def test_each_limit_fails_the_canary(canary: Track, failed: str) -> None:
    outcome, _, reasons = judge(LIMITS, STABLE, canary)
    assert (outcome, reasons) == ("fail", [failed])


def test_too_few_requests_is_inconclusive_even_when_a_check_fails() -> None:
    # 1 failure in 99: a canary that serves its 100th request well is at the limit, not over it.
    outcome, checks, reasons = judge(LIMITS, STABLE, track("canary", 99, 1, 0.010, 0.050))
    assert outcome == "inconclusive"
    assert reasons == ["canary served 99 requests in 10m, fewer than 100"]
    assert checks[0].passed is False  # still reported, with its number
    outcome, _, reasons = judge(LIMITS, track("stable", None, None, None, None), track("canary", 500, 0, 0.01, 0.05))
    assert (outcome, reasons) == ("inconclusive", ["stable served 0 requests in 10m, fewer than 100"])


def test_more_failures_than_min_requests_allows_fail_a_canary_with_too_little_traffic() -> None:
    """A canary failing every request fails once its 5xx count alone exceeds max_error_rate x min_requests
    (here 1): at min_requests it would already be over the limit."""
    outcome, _, reasons = judge(LIMITS, STABLE, track("canary", 2, 2, None, None))
    assert outcome == "fail"
    assert reasons[0].startswith("error rate: the canary failed 2 requests in 10m, more than max_error_rate x")
    assert reasons[1] == "canary served 2 requests in 10m, fewer than 100"
    assert judge(LIMITS, STABLE, track("canary", 1, 1, None, None))[0] == "inconclusive"


def test_a_busy_healthy_canary_beside_a_quiet_stable_is_inconclusive_not_failed() -> None:
    """The early fail is for a canary short of traffic: 2 failures in 5,000 canary requests (0.04%) beside a
    stable that served 80 is too little to compare, not a failed canary (an abort MR would follow)."""
    outcome, _, reasons = judge(LIMITS, track("stable", 80, 0, 0.010, 0.050), track("canary", 5000, 2, 0.010, 0.050))
    assert (outcome, reasons) == ("inconclusive", ["stable served 80 requests in 10m, fewer than 100"])


def test_a_number_prometheus_lacked_is_inconclusive_unless_another_check_fails() -> None:
    no_latency = track("canary", 200, 0, None, None)
    assert judge(LIMITS, STABLE, no_latency)[0] == "inconclusive"
    assert judge(LIMITS, STABLE, track("canary", 200, 100, None, None))[0] == "fail"


def test_drift_is_compared_only_with_a_limit() -> None:
    drifting = track("canary", 200, 0, 0.010, 0.050, drift=0.4)
    assert judge(LIMITS, STABLE, drifting)[0] == "pass"
    with_drift = Thresholds("10m", 100, 0.01, 1.25, 1.25, 0.2)
    assert judge(with_drift, STABLE, drifting)[2] == ["input drift: 0.4 > 0.2"]
    assert judge(with_drift, STABLE, track("canary", 200, 0, 0.010, 0.050, drift=0.1))[0] == "pass"
    assert judge(with_drift, STABLE, track("canary", 200, 0, 0.010, 0.050))[0] == "inconclusive"


def test_an_unreachable_prometheus_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MlgitError, match=rf"cannot reach Prometheus at {url}") as caught:
        Prometheus(url).measure("up", 0)
    assert "monitoring.prometheus_url" in (caught.value.hint or "")


def test_window_is_a_prometheus_duration() -> None:
    assert check_window("1h30m", "--window") == "1h30m"
    with pytest.raises(MlgitError, match=r"--window: '10 min' is not a Prometheus duration"):
        check_window("10 min", "--window")
    # A window of no time measures nothing: refused, by --window and by mlgit.yaml alike.
    with pytest.raises(MlgitError, match=r"--window: '0s' is not a Prometheus duration longer than 0"):
        check_window("0s", "--window")
    with pytest.raises(ValidationError, match=r"analysis.window\n.*'0m0s' is not a Prometheus duration longer than 0"):
        CanaryConfig.model_validate({"analysis": {"window": "0m0s"}})
