"""The rendered alert rules on real series: a real Prometheus scrapes a running model server every second and
evaluates the PrometheusRule's groups; failing traffic drives the error-rate alert (promtool's unit tests in
test_rules.py cover each rule's timing; here the point is that the rules read the series the runtime exports)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from mlgit.config.schema import MlgitConfig
from mlgit.manifests.alerts import alert_groups
from mlgit.targets import target
from tests.monitoring.conftest import ModelServerProcess, PrometheusProcess, start_prometheus, wait_until

pytestmark = pytest.mark.integration

ROW = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
ERROR_RATE_ALERT = "MlgitErrorRateHigh"
# Series that exist only with a feature this server does not run: drift needs a reference profile,
# kube_* come from kube-state-metrics in a cluster.
NOT_EXPORTED_HERE = re.compile(r"^(mlgit_input_drift_score|kube_.*)$")


@pytest.fixture(scope="module")
def rule_groups(monitored_project: tuple[MlgitConfig, str]) -> list[dict[str, Any]]:
    """The PrometheusRule's `spec.groups` that `mlgit render` writes for the environment, as they are (their
    `for:` durations are minutes: the error-rate alert goes pending here, promtool's tests cover firing)."""
    return alert_groups(*monitored_project)


class Traffic:
    """Requests one at a time in a loop on a thread (alone, all succeed; during bursts some are refused too),
    so that rates have samples whatever else is sent."""

    def __init__(self, server: ModelServerProcess, model: str) -> None:
        self._server, self._model = server, model
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self._server.url, timeout=10) as client:
            while not self._stop.is_set():
                client.post(f"/v2/models/{self._model}/infer", json=ROW)
                self._stop.wait(0.02)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def refused_bursts(server: ModelServerProcess, model: str, bursts: int) -> list[int]:
    """Concurrent requests to the model, whose queue holds one: most are answered 503."""
    url = f"/v2/models/{model}/infer"
    with httpx.Client(base_url=server.url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        statuses: list[int] = []
        for _ in range(bursts):
            statuses += pool.map(lambda _: client.post(url, json=ROW).status_code, range(8))
    return statuses


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str,
    model_server: ModelServerProcess,
    monitored_project: tuple[MlgitConfig, str],
    rule_groups: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusProcess]:
    labels = {"namespace": target(*monitored_project, overlay=True).namespace, "pod": "pod-0"}
    workdir = tmp_path_factory.mktemp("prometheus")
    running = start_prometheus(workdir, [model_server.metrics_target], rule_groups, labels)
    yield running
    running.stop()


def _alert(prometheus: PrometheusProcess, name: str) -> dict[str, Any] | None:
    return next((a for a in prometheus.alerts() if a["labels"]["alertname"] == name), None)


def test_rules_load_and_read_series_the_runtime_exports(
    model_server: ModelServerProcess,
    monitored_project: tuple[MlgitConfig, str],
    rule_groups: list[dict[str, Any]],
    prometheus: PrometheusProcess,
) -> None:
    loaded = prometheus.api("rules")["groups"]
    assert loaded and all(rule["health"] != "err" for group in loaded for rule in group["rules"]), loaded
    names = {rule["name"] for group in loaded for rule in group["rules"]}
    assert ERROR_RATE_ALERT in names, names

    read = {name for group in rule_groups for rule in group["rules"] for name in _metric_names(rule["expr"])}
    wanted = sorted(name for name in read if not NOT_EXPORTED_HERE.match(name))
    assert wanted, read
    config, env = monitored_project
    # The rules' own selector: series that Prometheus holds under other labels would leave every rule silent.
    sel = f'namespace="{target(config, env, overlay=True).namespace}", model="{config.name}"'
    with Traffic(model_server, config.name):  # labelled series appear with the first request
        for name in wanted:
            query = f"count({{__name__=~'{name}(_bucket|_total)?', {sel}}})"
            wait_until(lambda query=query: prometheus.query(query), query)


def test_error_rate_alert_fires_on_real_failures(
    model_server: ModelServerProcess, monitored_project: tuple[MlgitConfig, str], prometheus: PrometheusProcess
) -> None:
    config, env = monitored_project
    with Traffic(model_server, config.name):
        wait_until(lambda: prometheus.query('rate(mlgit_inference_requests_total{status="200"}[5s]) > 0'), "traffic")
        assert _alert(prometheus, ERROR_RATE_ALERT) is None, "fires while every request succeeds"

        def alerting() -> dict[str, Any] | None:
            statuses = refused_bursts(model_server, config.name, 5)
            assert 503 in statuses, statuses
            alert = _alert(prometheus, ERROR_RATE_ALERT)
            return alert if alert and alert["state"] in {"pending", "firing"} else None

        alert = wait_until(alerting, f"{ERROR_RATE_ALERT} to be pending or firing", timeout=120)
    assert float(alert["value"]) > config.monitoring_of(env).objectives.error_rate, alert


def _metric_names(expr: str) -> set[str]:
    """The mlgit_/kube_ series a PromQL expression reads (histogram suffixes folded to the family)."""
    names = re.findall(r"\b((?:mlgit|kube)_[a-z0-9_]+)", expr)
    return {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in names}


def test_metric_names_fold_histogram_suffixes() -> None:
    expr = "histogram_quantile(0.99, sum by (le) (rate(mlgit_x_seconds_bucket[5m]))) / kube_up_total"
    assert _metric_names(expr) == {"mlgit_x_seconds", "kube_up"}
