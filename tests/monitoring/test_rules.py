"""The rendered alert rules under promtool (Debian's `prometheus` package): they load, and each alert fires
on series that breach its objective and stays silent on healthy ones. The rules are read from the
PrometheusRule `mlgit render` wrote, so what is tested is what is deployed."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgit.config.load import load_project
from mlgit.manifests.render import DEPLOY
from tests.monitoring.test_dashboard import exported_series

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# A GPU model; objectives (tests/manifests/cases.py): staging keeps the top-level 500 ms p99 and 5% errors, prod
# writes its own objectives section, 100 ms p99, which replaces the top-level one (error rate: the default 1%),
# and a drift threshold of 0.3 (the default is 0.2).
CASE = "linear-gpu"
MODEL = "linear"
EVAL = "30m"  # past every rule's `for`, with the 5m rate window full
POD = "linear-abc"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _latency(ns: str, per_bucket: dict[str, int]) -> list[dict[str, str]]:
    """Request-duration buckets where each minute adds `per_bucket[le]` (cumulative, as Prometheus counts)."""
    sel = {"namespace": ns, "model": MODEL}
    return [
        _series("mlgit_inference_request_duration_seconds_bucket", {**sel, "le": le}, f"0+{n}x40")
        for le, n in per_bucket.items()
    ]


def _scenarios(ns: str) -> dict[str, dict[str, Any]]:
    """Per alert: series that breach it, the labels it then fires with, and healthy series."""
    sel = {"namespace": ns, "model": MODEL}
    pod = {**sel, "pod": POD}
    requests = "mlgit_inference_requests_total"
    deployment = {"namespace": ns, "deployment": MODEL}
    provider = "mlgit_model_execution_provider"
    drift = {**sel, "input": "input", "feature": "0"}
    return {
        "MlgitErrorRateHigh": {
            "breach": [
                _series(requests, {**sel, "status": "200"}, "0+90x40"),
                _series(requests, {**sel, "status": "500"}, "0+10x40"),  # 10%: over prod's 1%
            ],
            "healthy": [
                _series(requests, {**sel, "status": "200"}, "0+999x40"),
                _series(requests, {**sel, "status": "500"}, "0+1x40"),  # 0.1%
            ],
            "labels": {"severity": "critical"},
        },
        "MlgitLatencyP99High": {
            # Every request between 100 and 250 ms: p99 over prod's 100 ms.
            "breach": _latency(ns, {"0.05": 0, "0.1": 0, "0.25": 10, "+Inf": 10}),
            "healthy": _latency(ns, {"0.05": 10, "0.1": 10, "0.25": 10, "+Inf": 10}),
            "labels": {"severity": "critical"},
        },
        "MlgitQueueSaturated": {
            "breach": [_series("mlgit_inference_pending_requests", pod, "1000x40")],  # of 1024 slots
            "healthy": [_series("mlgit_inference_pending_requests", pod, "100x40")],
            "labels": {"severity": "warning", "pod": POD},
        },
        "MlgitReplicasNotReady": {
            "breach": [
                _series("kube_deployment_status_replicas_ready", deployment, "1x40"),
                _series("kube_deployment_spec_replicas", deployment, "2x40"),
            ],
            "healthy": [
                _series("kube_deployment_status_replicas_ready", deployment, "2x40"),
                _series("kube_deployment_spec_replicas", deployment, "2x40"),
            ],
            "labels": {"severity": "warning", **deployment},
        },
        "MlgitGpuModelOnCpu": {
            "breach": [_series(provider, {**pod, "provider": "CPUExecutionProvider"}, "1x40")],
            "healthy": [
                _series(provider, {**pod, "provider": "CUDAExecutionProvider"}, "1x40"),
                _series(provider, {**pod, "provider": "CPUExecutionProvider"}, "1x40"),
            ],
            "labels": {"severity": "critical", "pod": POD},
        },
        "MlgitInputDrift": {
            # prod's own threshold: 0.3
            "breach": [_series("mlgit_input_drift_score", drift, "0.35x40")],
            "healthy": [_series("mlgit_input_drift_score", drift, "0.25x40")],
            "labels": {"severity": "warning", "input": "input", "feature": "0"},
        },
    }


def _rendered(repo: Path, env: str) -> tuple[list[dict[str, Any]], str]:
    """The rendered PrometheusRule's groups of `env`, and the environment's namespace."""
    rule = yaml.safe_load((repo / DEPLOY / "overlays" / env / "alerts.yaml").read_text())
    assert rule["kind"] == "PrometheusRule" and rule["apiVersion"] == "monitoring.coreos.com/v1"
    namespace = load_project(repo).config.environment(env).namespace
    assert namespace is not None
    return rule["spec"]["groups"], namespace


def _promtool_test(tmp_path: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]) -> None:
    # promtool compares annotations verbatim: the summaries' wording is not what is tested here (their
    # templates are, by `promtool check rules`), so the alerts are compared by their labels alone.
    plain = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]} for g in groups]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": plain}))
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests})
    )
    run = subprocess.run([PROMTOOL, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _case(series: list[dict[str, str]], alert: str, fired: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": EVAL, "alertname": alert, "exp_alerts": fired}],
    }


@pytest.fixture(scope="module")
def prod(case_repo: Callable[[str], Path]) -> tuple[list[dict[str, Any]], str]:
    return _rendered(case_repo(CASE), "prod")


def test_the_rendered_rules_pass_promtool_check(prod: tuple[list[dict[str, Any]], str], tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": prod[0]}))
    run = subprocess.run([PROMTOOL, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_scenario(prod: tuple[list[dict[str, Any]], str]) -> None:
    groups, namespace = prod
    assert {r["alert"] for g in groups for r in g["rules"]} == set(_scenarios(namespace))


def test_the_rules_read_series_the_runtime_exports(prod: tuple[list[dict[str, Any]], str]) -> None:
    used = {m for g in prod[0] for r in g["rules"] for m in re.findall(r"\b(mlgit_[a-z_]+)\b", r["expr"])}
    assert used <= exported_series(), used - exported_series()


@pytest.mark.parametrize("alert", list(_scenarios("ns")))
def test_alert_fires_on_a_breach_and_only_then(
    alert: str, prod: tuple[list[dict[str, Any]], str], tmp_path: Path
) -> None:
    groups, namespace = prod
    scenario = _scenarios(namespace)[alert]
    _promtool_test(
        tmp_path,
        groups,
        [
            _case(scenario["breach"], alert, [{"exp_labels": scenario["labels"]}]),
            _case(scenario["healthy"], alert, []),
            # Another environment's (namespace's) breach is not this one's.
            _case(
                [{**s, "series": s["series"].replace(namespace, "elsewhere")} for s in scenario["breach"]], alert, []
            ),
        ],
    )


def test_objectives_are_the_environments_own(case_repo: Callable[[str], Path], tmp_path: Path) -> None:
    """Staging keeps the top-level objectives, 500 ms p99 and 5% errors: what pages in prod (p99 near 250 ms,
    3% errors) is quiet there, while drift prod tolerates is not; staging's alerts are warnings."""
    groups, namespace = _rendered(case_repo(CASE), "staging")
    slow = _scenarios(namespace)["MlgitLatencyP99High"]["breach"]
    _promtool_test(tmp_path, groups, [_case(slow, "MlgitLatencyP99High", [])])
    requests = "mlgit_inference_requests_total"
    sel = {"namespace": namespace, "model": MODEL}
    some = [
        _series(requests, {**sel, "status": "200"}, "0+97x40"),
        _series(requests, {**sel, "status": "500"}, "0+3x40"),
    ]
    many = _scenarios(namespace)["MlgitErrorRateHigh"]["breach"]
    _promtool_test(
        tmp_path,
        groups,
        [
            _case(some, "MlgitErrorRateHigh", []),
            _case(many, "MlgitErrorRateHigh", [{"exp_labels": {"severity": "warning"}}]),
        ],
    )
    # Quiet under prod's drift threshold of 0.3, over staging's default 0.2.
    drift = _scenarios(namespace)["MlgitInputDrift"]
    _promtool_test(tmp_path, groups, [_case(drift["healthy"], "MlgitInputDrift", [{"exp_labels": drift["labels"]}])])
