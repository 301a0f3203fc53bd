"""Real components for monitoring tests: a model server process with its own metrics port, and a real
Prometheus (Debian's `prometheus` package) scraping it every second. bench/monitoring/ starts them too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mlgit.config.load import parse_config
from mlgit.config.schema import MlgitConfig
from tests.conftest import REPO_ROOT, free_port
from tests.fixtures_integration import unavailable
from tests.serving_runtime.conftest import IRIS_SAMPLE, classifier, write_model

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
STARTUP_SECONDS = 60.0


def wait_until(condition: Any, what: str, timeout: float = STARTUP_SECONDS) -> Any:
    """Poll `condition()` until it returns something truthy; fail naming `what` past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.2)


@dataclass
class ModelServerProcess:
    """`python -m mlgit_serving` with /metrics on its own port, as the Deployment runs it."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_model_server(repository: Path, log: Path, env: dict[str, str] | None = None) -> ModelServerProcess:
    port, metrics_port = free_port(), free_port()
    environment = {
        **os.environ,
        "MLGIT_SERVING_MODEL_REPOSITORY": str(repository),
        "MLGIT_SERVING_HOST": "127.0.0.1",
        "MLGIT_SERVING_PORT": str(port),
        "MLGIT_SERVING_METRICS_PORT": str(metrics_port),
        "MLGIT_SERVING_DRAIN_SECONDS": "1",
        **(env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "mlgit_serving"], env=environment, stdout=out, stderr=out)
    server = ModelServerProcess(process, port, metrics_port)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"model server exited {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, "the model server to be ready")
    return server


@dataclass
class PrometheusProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {response.text}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of `expr` now (an empty list while it has no samples)."""
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("alerts")["alerts"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_prometheus(
    workdir: Path,
    targets: list[str],
    rule_groups: list[dict[str, Any]],
    labels: dict[str, str],
    static_configs: list[dict[str, Any]] | None = None,
) -> PrometheusProcess:
    """Prometheus scraping `targets` and evaluating `rule_groups` every second, its TSDB under `workdir`.
    `labels` go on every scraped series, as prometheus-operator adds `namespace` and `pod` in a cluster
    (the rules and the dashboard select on them). `static_configs`, when given, replaces targets and labels:
    several groups of targets, each with its own labels (a canary's and a stable's pods)."""
    workdir.mkdir(parents=True, exist_ok=True)
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{**group, "interval": "1s"} for group in rule_groups]}))
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules)],
                "scrape_configs": [
                    {
                        "job_name": "mlgit-serving",
                        "static_configs": static_configs or [{"targets": targets, "labels": labels}],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=out,
        )
    prometheus = PrometheusProcess(process, port, log)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, "prometheus to be ready")
    return prometheus


def write_monitored_repository(root: Path, name: str) -> Path:
    """Model `name`, an iris classifier behind a batch queue of one request that waits 200 ms for company:
    requests one at a time succeed, concurrent ones are refused 503 (the server-side errors an error-rate
    alert counts)."""
    settings = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "batching": {"enabled": True, "max_batch_size": 64, "max_delay_ms": 200, "max_queue_size": 1},
    }
    write_model(root, name, {"1": classifier(0.0)}, settings, IRIS_SAMPLE)
    return root


@pytest.fixture(scope="module")
def monitored_project() -> tuple[MlgitConfig, str]:
    """The iris example's config and its production environment: whose rules and dashboard are checked."""
    config, _ = parse_config(REPO_ROOT / "examples" / "iris-classifier" / "mlgit.yaml")
    return config, "prod"


@pytest.fixture(scope="module")
def model_server(
    monitored_project: tuple[MlgitConfig, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServerProcess]:
    root = tmp_path_factory.mktemp("monitored")
    repository = write_monitored_repository(root / "models", monitored_project[0].name)
    server = start_model_server(repository, root / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    if not os.access(PROMETHEUS, os.X_OK):
        unavailable("prometheus is not installed: apt-get install -y prometheus")
    return PROMETHEUS
