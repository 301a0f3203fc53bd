"""`mlgit analyze` on real numbers: a real Prometheus scrapes real model servers every second, labelled as the
ServiceMonitor labels a canary environment's pods ({namespace, mlgit_dev_track}); the verdict flips between a
good canary (the stable's model) and a bad one (a model server that refuses most concurrent requests, 503)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlgit import render
from mlgit.config.load import load_project
from mlgit.config.yamlio import dump_yaml, read_yaml
from mlgit.main import app
from mlgit.manifests.canary_state import CanaryState, canary_in_text, write_canary
from mlgit.scaffold import InitOptions, init_repository
from mlgit.targets import target
from tests.fixtures_integration import unavailable
from tests.monitoring.conftest import (
    PROMETHEUS,
    ModelServerProcess,
    PrometheusProcess,
    start_model_server,
    start_prometheus,
    wait_until,
    write_monitored_repository,
)
from tests.onnx_models import write_linear_model
from tests.promote.support import IDENTITY, Remote, git
from tests.serving_runtime.conftest import IRIS_SAMPLE, classifier, write_model

pytestmark = pytest.mark.integration

MODEL = "canaried"
STABLE = f"registry.example.com/ml/{MODEL}@sha256:{'a' * 64}"
CANARY = f"registry.example.com/ml/{MODEL}@sha256:{'b' * 64}"
ROW = {"inputs": IRIS_SAMPLE["inputs"]}
MIN_REQUESTS = 60
# Latency ratios between two processes on a shared, busy machine are noise: these tests judge the error rate
# (test_verdict.py covers the latency checks on given numbers).
ANALYSIS = {"window": "5m", "min_requests": MIN_REQUESTS, "max_p99_ratio": 1000, "max_p50_ratio": 1000}


@dataclass
class Canaries:
    """A model repository whose staging runs a good canary, prod a bad one and dev one without traffic."""

    repo: Path
    prometheus: PrometheusProcess
    servers: dict[str, ModelServerProcess]


def _repository(base: Path) -> Path:
    repo = init_repository(InitOptions(target=base / "repo", name=MODEL, model=write_linear_model(base / "m.onnx")))
    doc = read_yaml(repo / "mlgit.yaml")
    envs = ("dev", "staging", "prod", "qa")
    doc["environments"] = {env: {"canary": {"analysis": dict(ANALYSIS)}} for env in envs}
    (repo / "mlgit.yaml").write_text(dump_yaml(doc), encoding="utf-8")
    render.render(load_project(repo, warn=False))
    for env in envs[:3]:  # a canary runs in each but qa (as after an abort)
        write_canary(repo, env, stable=STABLE, canary=CANARY, weight=10, replicas=1)
    return repo


def _set_prometheus_url(repo: Path, url: str) -> None:
    doc = read_yaml(repo / "mlgit.yaml")
    doc["monitoring"] = {"prometheus_url": url}
    (repo / "mlgit.yaml").write_text(dump_yaml(doc), encoding="utf-8")


@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canaries]:
    if not os.access(PROMETHEUS, os.X_OK):
        unavailable("prometheus is not installed: apt-get install -y prometheus")
    base = tmp_path_factory.mktemp("canaries")
    repo = _repository(base)
    config = load_project(repo, warn=False).config
    ns = {env: target(config, env, overlay=True).namespace for env in ("dev", "staging", "prod")}
    plain = base / "plain"
    inputs = [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    write_model(plain, MODEL, {"1": classifier(0.0)}, {"inputs": inputs}, IRIS_SAMPLE)
    servers = {
        "stable": start_model_server(plain, base / "stable.log"),
        "good": start_model_server(plain, base / "good.log"),
        # A queue of one request that waits 200 ms for company: concurrent requests are refused, 503.
        "bad": start_model_server(write_monitored_repository(base / "bad", MODEL), base / "bad.log"),
    }
    scraped = [("staging", "stable", "stable"), ("staging", "good", "canary"), ("prod", "stable", "stable"),
               ("prod", "bad", "canary")]  # fmt: skip
    static_configs = [
        {"targets": [servers[server].metrics_target], "labels": {"namespace": ns[env], "mlgit_dev_track": track}}
        for env, server, track in scraped
    ]
    try:
        prometheus = start_prometheus(base / "prometheus", [], [], {}, static_configs=static_configs)
        _set_prometheus_url(repo, prometheus.url)
        try:
            yield Canaries(repo, prometheus, servers)
        finally:
            prometheus.stop()
    finally:
        for server in servers.values():
            server.stop()


def _bursts(servers: list[ModelServerProcess], bursts: int) -> dict[int, int]:
    """`bursts` rounds of 8 concurrent requests to each server; how many got each status."""
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        for _ in range(bursts):
            for server in servers:
                url = f"{server.url}/v2/models/{MODEL}/infer"
                for status in pool.map(lambda _, url=url: client.post(url, json=ROW).status_code, range(8)):
                    statuses[status] = statuses.get(status, 0) + 1
    return statuses


def analyze(repo: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["analyze", *args, str(repo)])
    return result.exit_code, result.stdout, result.stderr


def _served(prometheus: PrometheusProcess, track: str) -> list[float]:
    """Requests Prometheus counts for `track` in the window, one number per namespace that has the series."""
    query = f'sum by (namespace) (increase(mlgit_inference_requests_total{{mlgit_dev_track="{track}"}}[5m]))'
    return [float(found["value"][1]) for found in prometheus.query(query)]


@pytest.fixture(scope="module")
def traffic(canaries: Canaries) -> dict[int, int]:
    """Traffic to every server until Prometheus counts enough requests of both tracks in both namespaces
    (staging, prod) in the window: a stable scraped once too few reads as no traffic, and the verdict is then
    rightly inconclusive, not the pass or fail the tests expect."""
    seen: dict[int, int] = {}

    def enough() -> bool:
        for status, count in _bursts(list(canaries.servers.values()), 3).items():
            seen[status] = seen.get(status, 0) + count
        counted = [_served(canaries.prometheus, track) for track in ("stable", "canary")]
        return all(len(counts) == 2 and min(counts) > 1.5 * MIN_REQUESTS for counts in counted)

    wait_until(enough, "Prometheus to count the canaries' requests", timeout=300)
    return seen


def test_a_good_canary_passes_and_a_bad_one_fails(canaries: Canaries, traffic: dict[int, int], tmp_path: Path) -> None:
    assert traffic.get(503), f"the bad canary refused nothing: {traffic}"
    good = tmp_path / "good.json"
    code, out, err = analyze(canaries.repo, "--env", "staging", "--output", str(good))
    assert code == 0, out + err
    verdict = json.loads(good.read_text(encoding="utf-8"))
    assert verdict["verdict"] == "pass", verdict
    assert verdict["canary"]["requests"]["value"] >= MIN_REQUESTS
    assert verdict["canary"]["error_rate"] == 0
    assert verdict["prometheus"] == canaries.prometheus.url  # from monitoring.prometheus_url
    assert 'mlgit_dev_track="canary"' in verdict["canary"]["errors"]["query"]
    assert "pass" in out

    bad = tmp_path / "bad.json"
    code, out, err = analyze(canaries.repo, "--env", "prod", "--output", str(bad))
    assert code == 4, out + err
    verdict = json.loads(bad.read_text(encoding="utf-8"))
    assert verdict["verdict"] == "fail", verdict
    assert verdict["canary"]["error_rate"] > ANALYSIS.get("max_error_rate", 0.01)
    assert verdict["stable"]["error_rate"] == 0
    assert [c["name"] for c in verdict["checks"] if c["passed"] is False] == ["error rate"]
    assert verdict["reasons"][0].startswith("error rate: ")


def test_no_traffic_is_inconclusive(canaries: Canaries, traffic: dict[int, int]) -> None:
    code, out, err = analyze(canaries.repo, "--env", "dev", "--prometheus", canaries.prometheus.url)
    assert code == 5, out + err
    assert f"canary served 0 requests in 5m, fewer than {MIN_REQUESTS}" in out


def test_what_is_not_prometheus_is_an_error_naming_the_url(canaries: Canaries) -> None:
    server = canaries.servers["stable"]  # answers HTTP, but has no /api/v1/query
    code, _, err = analyze(canaries.repo, "--env", "staging", "--prometheus", server.url)
    assert code == 1
    assert f"Prometheus at {server.url} refused the query" in err
    assert "HTTP 404" in err


def test_without_a_running_canary_there_is_nothing_to_analyze(canaries: Canaries) -> None:
    code, out, err = analyze(canaries.repo, "--env", "qa", "--prometheus", canaries.prometheus.url)
    assert code == 0, out + err
    assert "qa runs no canary (weight 0%, 0 canary replicas): nothing to analyze" in out


def test_abort_on_fail_opens_the_abort_merge_request(
    canaries: Canaries, traffic: dict[int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's analyze job: a failed canary's abort merge request, weight 0 and no canary pods."""
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)
    for name in ("MLGIT_GITLAB_TOKEN", "GITLAB_TOKEN", "CI_DEFAULT_BRANCH"):
        monkeypatch.delenv(name, raising=False)
    remote = Remote(canaries.repo, tmp_path / "origin.git")
    code, out, err = analyze(canaries.repo, "--env", "prod", "--abort-on-fail")
    assert code == 4, out + err
    assert "pushed mlgit/canary-prod" in out
    pin = "deploy/overlays/prod/image/kustomization.yaml"
    after = canary_in_text(remote.show("mlgit/canary-prod", pin).encode(), "prod", pin)
    assert after == CanaryState(STABLE, CANARY, 0, 0)
    assert git("diff", "--name-only", "main", "mlgit/canary-prod", cwd=remote.origin) == pin
    assert remote.pushes()[-1][2] == f"merge_request.title=Abort the canary of prod: sha256:{'b' * 12}"
