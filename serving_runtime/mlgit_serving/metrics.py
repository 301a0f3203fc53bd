"""Prometheus metrics, one registry per app. Names follow Triton's nv_inference_* family in
Prometheus base units (seconds), with MLServer's model/version labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

from .drift import DriftCollector, DriftMonitor

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_LABELS = ("model", "version")


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # What /metrics serves: this registry, or with several worker processes all of theirs merged
        # (worker_metrics.py); `registry` stays this process's own.
        self.scrape_registry = self.registry
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "mlgit_inference_requests", "Inference requests by HTTP status.", (*_LABELS, "status"), registry=r
        )
        self.request_duration = Histogram(
            "mlgit_inference_request_duration_seconds",
            "Time from request arrival to response.",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_duration = Histogram(
            "mlgit_inference_queue_duration_seconds",
            "Time a request waited before its computation began.",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_duration = Histogram(
            "mlgit_inference_compute_duration_seconds",
            "Time onnxruntime spent per execution (one batch).",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "mlgit_inference_batch_size",
            "Rows per onnxruntime execution.",
            _LABELS,
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.pending = Gauge(
            "mlgit_inference_pending_requests", "Requests admitted and not yet answered.", _LABELS, registry=r
        )
        self.ready = Gauge("mlgit_model_ready", "1 when the model version serves requests.", _LABELS, registry=r)
        self.provider = Gauge(
            "mlgit_model_execution_provider",
            "1 for each execution provider a model version's session uses.",
            (*_LABELS, "provider"),
            registry=r,
        )
        self.drift = DriftCollector()  # mlgit_input_drift_score, computed at scrape time
        r.register(self.drift)

    def for_version(self, model: str, version: str) -> VersionMetrics:
        return VersionMetrics(self, model, version)


class VersionMetrics:
    """Label children resolved once per model version: label lookups are not free on the hot path."""

    def __init__(self, metrics: ServingMetrics, model: str, version: str) -> None:
        self._metrics = metrics
        self._labels = (model, version)
        self._by_status: dict[int, MetricWrapperBase] = {}
        self.request_duration = metrics.request_duration.labels(model, version)
        self.queue_duration = metrics.queue_duration.labels(model, version)
        self.compute_duration = metrics.compute_duration.labels(model, version)
        self.batch_size = metrics.batch_size.labels(model, version)
        self.pending = metrics.pending.labels(model, version)
        self.ready = metrics.ready.labels(model, version)

    def count(self, status: int) -> None:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self._metrics.requests.labels(*self._labels, str(status))
        child.inc()

    def watch_drift(self, monitor: DriftMonitor | None) -> None:
        """Export `monitor`'s scores (None: stop exporting this version's)."""
        collector = self._metrics.drift
        collector.remove_version(*self._labels)
        if monitor is not None:
            collector.add(monitor)

    def set_providers(self, providers: list[str]) -> None:
        for name in providers:
            self._metrics.provider.labels(*self._labels, name).set(1)
