"""/metrics across worker processes: every scrape sees the whole pod, whichever worker answers it.

Each worker keeps its own in-process registry (no shared memory on the request path) and serves it on an
abstract Unix socket (no file: the root filesystem may be read-only) named after the supervisor's pid and
the worker's index, from a thread of its own, once it listens. A scrape (the main
port's /metrics, answered by one worker, or the supervisor's metrics_port) reads every worker's
exposition and merges them: counters, histograms and most gauges are summed (pending requests, open
connections, resident memory: the pod's totals); the gauges in _GAUGE_MERGE are not sums. A worker that
died is absent until it is restarted, so the pod's counters can fall: Prometheus' rate() reads that as
a counter reset, as it does a restarted pod.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# A worker busy in a long batch still answers from its exposition thread; one that does not within this
# is left out of that scrape rather than stalling it.
SCRAPE_TIMEOUT_SECONDS = 5.0
_Merge = Callable[[float, float], float]
# Gauges whose pod-wide value is not the sum of the workers' values.
_GAUGE_MERGE: dict[str, _Merge] = {
    "mlgit_model_ready": min,  # ready only when every worker has the version loaded
    "mlgit_model_execution_provider": max,
    "mlgit_input_drift_score": max,  # each worker scores its own share of the traffic: report the worst
    "process_start_time_seconds": min,
    "process_max_fds": min,
}
_REQUESTS_TOTAL = "mlgit_inference_requests_total"


def address(group: str, index: int) -> str:
    """The abstract Unix socket address of worker `index` of the workers of `group` (supervisor pid)."""
    return f"\0mlgit-serving-metrics-{group}-{index}"


class _ExpositionHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        registry: CollectorRegistry = self.server.registry  # type: ignore[attr-defined]
        self.wfile.write(generate_latest(registry))


class _ExpositionServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve_exposition(registry: CollectorRegistry, where: str) -> socketserver.BaseServer:
    """Serve `registry`'s text exposition to whoever connects to the Unix socket `where`, from a thread."""
    server = _ExpositionServer(where, _ExpositionHandler)
    server.registry = registry  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="metrics-exposition", daemon=True).start()
    return server


def _read(where: str) -> str | None:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(SCRAPE_TIMEOUT_SECONDS)
            client.connect(where)
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
    except OSError as exc:  # a worker that died or is restarting: absent from this scrape
        logger.debug("worker metrics unavailable", extra={"socket": where[1:], "error": str(exc)})
        return None
    return b"".join(chunks).decode()


def merge(expositions: Iterable[tuple[str, str]]) -> list[Metric]:
    """Merge (worker name, text exposition) pairs into one set of families, plus mlgit_workers and
    mlgit_worker_requests_total{worker}, the inference requests each worker answered (is load spread?)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    workers = Metric("mlgit_workers", "Worker processes whose metrics this scrape includes.", "gauge")
    per_worker = Metric("mlgit_worker_requests", "Inference requests answered, by worker process (index).", "counter")
    count = 0
    for worker, text in expositions:
        count += 1
        answered = 0.0
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            combine: _Merge = _GAUGE_MERGE.get(family.name, _sum) if family.type == "gauge" else _sum
            merged = values[family.name]
            for sample in family.samples:
                if sample.name == _REQUESTS_TOTAL:
                    answered += sample.value
                key = (sample.name, tuple(sorted(sample.labels.items())))
                rule = min if sample.name.endswith("_created") else combine
                merged[key] = rule(merged[key], sample.value) if key in merged else sample.value
        per_worker.add_sample("mlgit_worker_requests_total", {"worker": worker}, answered)
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    workers.add_sample("mlgit_workers", {}, count)
    return [*families.values(), workers, per_worker]


def _sum(a: float, b: float) -> float:
    return a + b


class WorkersCollector(Collector):
    """Collects the merged metrics of the `count` workers of `group`."""

    def __init__(self, group: str, count: int) -> None:
        self._group = group
        self._count = count

    def collect(self) -> Iterator[Metric]:
        texts = ((str(i), _read(address(self._group, i))) for i in range(self._count))
        yield from merge((worker, text) for worker, text in texts if text is not None)


def pod_registry(group: str, count: int) -> CollectorRegistry:
    """A registry whose exposition is the merge of every worker's metrics (see module docstring)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkersCollector(group, count))
    return registry
