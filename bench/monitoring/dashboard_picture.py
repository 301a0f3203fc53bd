"""What the Grafana dashboard shows, without a Grafana server: the iris example's model (its rendered
model-settings.json, drift profile included) served by mlgit-serving, scraped every second by a real Prometheus
loaded with the prod environment's alert rules, under about a minute of load in three phases:

1. normal: rows drawn like the reference (examples/iris-classifier/model/reference.npz), 8 clients;
2. overload: 48 clients against a queue of 16 (max_queue_size lowered for this run): some requests get 503;
3. shifted: 8 clients again, every feature moved by 1.5 of its reference standard deviations (drift).

Then every panel's PromQL expression of the dashboard `mlgit render` ships (cli/mlgit/manifests/dashboard.py)
is evaluated with query_range and plotted, one subplot per panel titled as the panel is, into
docs/images/dashboard.png; the alerts active at the end are printed.

    python bench/monitoring/dashboard_picture.py [--phase-seconds 20] [--out docs/images/dashboard.png]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.monitoring: the same processes as the test
from mlgit.config.load import parse_config
from mlgit.manifests.alerts import alert_groups
from mlgit.manifests.dashboard import dashboard_json
from mlgit.targets import target
from tests.monitoring.conftest import PrometheusProcess, start_model_server, start_prometheus, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "iris-classifier"
ENV = "prod"
QUEUE_SIZE = 16
# Grafana's $__rate_interval is max(4 x scrape interval, step + scrape interval): with 1 s scrapes and 1 s steps.
RATE_INTERVAL = "4s"
PHASES = (("normal", 8, 0.0), ("overload", 48, 0.0), ("shifted", 8, 1.5))  # name, clients, shift in std


def write_repository(root: Path, name: str) -> Path:
    """The example's model and rendered settings, with a small queue so that the overload phase is refused."""
    (root / name / "1").mkdir(parents=True)
    shutil.copy(EXAMPLE / "model" / "model.onnx", root / name / "1" / "model.onnx")
    settings = json.loads((EXAMPLE / "model-settings.json").read_text())
    settings["batching"]["max_queue_size"] = QUEUE_SIZE
    (root / name / "model-settings.json").write_text(json.dumps(settings))
    return root


def load(url: str, reference: np.ndarray, clients: int, shift: float, seconds: float) -> dict[int, int]:
    """`clients` threads posting one reference row each (moved by `shift` standard deviations) until the end."""
    moved = reference + shift * reference.std(axis=0)
    end = time.monotonic() + seconds
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < end:
                row = moved[rng.integers(len(moved))]
                body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}]}
                status = http.post(url, json=body).status_code
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def panels(model: str, namespace: str) -> list[dict[str, Any]]:
    """The dashboard's time series panels, their queries with Grafana's variables substituted."""
    found = []
    for panel in json.loads(dashboard_json(model))["panels"]:
        if panel.get("type") != "timeseries":
            continue
        queries = [
            (t["legendFormat"], t["expr"].replace("$namespace", namespace).replace("$__rate_interval", RATE_INTERVAL))
            for t in panel["targets"]
        ]
        found.append(
            {"title": panel["title"], "unit": panel["fieldConfig"]["defaults"].get("unit", ""), "queries": queries}
        )
    return found


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def plot(
    prometheus: PrometheusProcess,
    found: list[dict[str, Any]],
    start: float,
    marks: list[tuple[str, float, float]],
    out: Path,
) -> None:
    end = marks[-1][2]
    columns = 2
    rows = -(-len(found) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(found) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, found, strict=False):
        for template, expr in panel["queries"]:
            for series in prometheus.query_range(expr, start, end, 1):
                times = [float(t) - start for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                ax.plot(times, values, label=legend(template, series["metric"]), linewidth=1.2)
        for index, (name, begin, finish) in enumerate(marks):
            ax.axvspan(begin - start, finish - start, color="0.93" if index % 2 else "white", zorder=0)
            ax.text(
                (begin + finish) / 2 - start,
                1.0,
                name,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                color="0.4",
            )
        ax.set_title(f"{panel['title']} ({panel['unit']})", pad=14)
        ax.set_xlabel("seconds")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    figure.suptitle("mlgit dashboard panels: their PromQL evaluated by a real Prometheus (no Grafana)", fontsize=11)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images" / "dashboard.png")
    args = parser.parse_args()

    config, _ = parse_config(EXAMPLE / "mlgit.yaml")
    namespace = target(config, ENV, overlay=True).namespace
    reference = np.load(EXAMPLE / "model" / "reference.npz")["input"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = start_model_server(write_repository(work / "models", config.name), work / "server.log")
        labels = {"namespace": namespace, "pod": f"{config.name}-0"}
        prometheus = start_prometheus(work / "prometheus", [server.metrics_target], alert_groups(config, ENV), labels)
        try:
            wait_until(lambda: prometheus.query("up == 1"), "the first scrape")
            url = f"{server.url}/v2/models/{config.name}/infer"
            start, marks = time.time(), []
            for name, clients, shift in PHASES:
                begin = time.time()
                statuses = load(url, reference, clients, shift, args.phase_seconds)
                marks.append((name, begin, time.time()))
                print(f"{name}: {clients} clients, statuses {statuses}")
            time.sleep(2)  # the last samples scraped
            plot(prometheus, panels(config.name, namespace), start, marks, args.out)
            for alert in prometheus.alerts():
                print(f"alert {alert['labels']['alertname']}: {alert['state']} (value {float(alert['value']):.3g})")
        finally:
            prometheus.stop()
            server.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
