"""mlgit.yaml `monitoring` (and `environments.<env>.monitoring`, `review.monitoring`): what watches the model.

The manifests renderer turns the resolved section of each environment into its ServiceMonitor, alert rules
(PrometheusRule) and Grafana dashboard (docs/monitoring.md). An environment's section overrides the top-level
one sub-section by sub-section: each sub-section it writes replaces the top-level one, the rest is inherited.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from mlgit.config.types import HttpUrl, PositiveInt, RepoPath, Strict


class Objectives(Strict):
    latency_p99_ms: PositiveInt = Field(
        250, description="The 99th percentile of request latency (ms) above which an alert fires."
    )
    error_rate: float = Field(
        0.01, gt=0, lt=1, description="The share of requests answered with a 5xx above which an alert fires."
    )


class DriftConfig(Strict):
    reference: RepoPath = Field(
        "model/reference.npz",
        description="Reference inputs (relative to mlgit.yaml): a .npz with one array per input, named as in the "
        "signature, rows along the first axis. Without the file drift is off (`mlgit validate` says so); its "
        "profile is rendered into model-settings.json (docs/monitoring.md).",
    )
    bins: int = Field(10, ge=2, le=100, description="Bins per feature, at quantiles of the reference.")
    window: PositiveInt = Field(1000, description="The drift score covers this many most recent rows per input.")
    threshold: float = Field(0.2, gt=0, description="A PSI score above it is drift: the alert fires.")


class TracingConfig(Strict):
    otlp_endpoint: HttpUrl = Field(
        description="OTLP/HTTP traces endpoint the server exports OpenTelemetry spans of inference requests to, "
        "e.g. http://otel-collector.observability:4318/v1/traces (MLGIT_SERVING_TRACING_ENDPOINT).",
    )
    sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of new traces recorded; a request carrying a W3C traceparent follows its caller's "
        "sampling decision (MLGIT_SERVING_TRACING_SAMPLE_RATE).",
    )


class PayloadLoggingConfig(Strict):
    url: HttpUrl = Field(
        description="HTTP(S) sink that sampled inference requests and responses are POSTed to as batched "
        "CloudEvents (application/cloudevents-batch+json), e.g. a Knative broker or a log collector "
        "(MLGIT_SERVING_PAYLOAD_LOG_URL).",
    )
    sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of successful inference requests sent (MLGIT_SERVING_PAYLOAD_LOG_SAMPLE_RATE).",
    )
    redact: list[Annotated[str, StringConstraints(min_length=1, pattern=r"^[^,]+$")]] = Field(
        [],
        description='Input/output names and JSON keys whose values are replaced by "[REDACTED]" before an '
        "event leaves the server (MLGIT_SERVING_PAYLOAD_LOG_REDACT, comma-separated: no commas in names).",
    )
    batch_size: PositiveInt = Field(100, description="Most events per POST (MLGIT_SERVING_PAYLOAD_LOG_BATCH_SIZE).")
    queue_size: PositiveInt = Field(
        10000,
        description="Events waiting for the sink; when full new ones are dropped and counted, inference never "
        "waits (MLGIT_SERVING_PAYLOAD_LOG_QUEUE_SIZE).",
    )
    flush_seconds: float = Field(
        1.0, gt=0, description="Longest an event waits for its batch to fill (MLGIT_SERVING_PAYLOAD_LOG_FLUSH_SECONDS)."
    )


class MonitoringConfig(Strict):
    enabled: bool = Field(
        False,
        description="Emit a prometheus-operator ServiceMonitor, alert rules (PrometheusRule) and a Grafana "
        "dashboard ConfigMap; needs prometheus-operator's CRDs in the cluster, hence off unless written.",
    )
    objectives: Objectives = Field(
        default_factory=Objectives, description="The service-level objectives the alert rules hold the model to."
    )
    drift: DriftConfig = Field(
        default_factory=DriftConfig,
        description="Input drift against reference data; the profile is the top-level section's (one per model), "
        "an environment's own `drift` changes only its alert threshold.",
    )
    tracing: TracingConfig | None = Field(
        None,
        description="OpenTelemetry traces of inference requests (independent of `enabled`); absent or null: off. "
        "An environment writing `tracing: null` turns it off there.",
    )
    payload_logging: PayloadLoggingConfig | None = Field(
        None,
        description="Sampled request/response payloads sent to an HTTP sink (independent of `enabled`); absent or "
        "null: off. An environment writing `payload_logging: null` turns it off there.",
    )
    prometheus_url: HttpUrl | None = Field(
        None,
        description="The Prometheus that scrapes this environment, whose HTTP API `mlgit analyze` asks for the "
        "canary's numbers, e.g. http://prometheus-operated.monitoring:9090 (`mlgit analyze --prometheus` wins).",
    )


def resolve_monitoring(own: MonitoringConfig | None, top: MonitoringConfig) -> MonitoringConfig:
    """An environment's monitoring: the top-level section with each sub-section `own` writes replaced."""
    if own is None:
        return top
    return top.model_copy(update={field: getattr(own, field) for field in own.model_fields_set})
