"""The Grafana dashboard ConfigMap: the sidecar's label, Grafana's JSON model, and queries of series the
serving runtime exports (a renamed metric must not leave an empty panel behind)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mlgit.manifests.render import DEPLOY
from mlgit_serving.metrics import ServingMetrics

CASE = "linear-gpu"  # monitoring on (tests/manifests/cases.py)
_METRIC = re.compile(r"\b(mlgit_[a-z_]+)\b")
_SAMPLE_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def exported_series() -> set[str]:
    """Every sample name the serving runtime's /metrics can carry."""
    families = ServingMetrics().registry.collect()
    return {family.name + suffix for family in families for suffix in _SAMPLE_SUFFIXES}


def _dashboard(repo: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config_map = yaml.safe_load((repo / DEPLOY / "components" / "monitoring" / "dashboard.yaml").read_text())
    (text,) = config_map["data"].values()
    return config_map, json.loads(text)


def test_the_dashboard_is_a_configmap_the_grafana_sidecar_loads(case_repo: Callable[[str], Path]) -> None:
    config_map, board = _dashboard(case_repo(CASE))
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert list(config_map["data"]) == ["linear.json"]
    assert board["uid"] == "mlgit-linear"
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace"]
    panels = {p["title"] for p in board["panels"] if p["type"] == "timeseries"}
    assert panels == {"Requests by status", "Request latency", "Batch size", "Queue", "Input drift (PSI)"}


def test_every_query_reads_a_series_the_runtime_exports(case_repo: Callable[[str], Path]) -> None:
    _, board = _dashboard(case_repo(CASE))
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert queries and all('namespace="$namespace", model="linear"' in q for q in queries)
    used = {m for q in queries for m in _METRIC.findall(q)}
    assert used <= exported_series(), used - exported_series()
