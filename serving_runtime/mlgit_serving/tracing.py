"""OpenTelemetry traces of inference requests, exported over OTLP/HTTP when MLGIT_SERVING_TRACING_ENDPOINT is set.

Off (the default) this module imports nothing beyond the standard library and the hot path pays one `is None`
check per request. On, each inference request gets a SERVER span that continues the caller's W3C `traceparent`
(sampled parent-based, at tracing_sample_rate for new traces) with four children:

  decode  reading, decompressing, decoding and validating the body (until the request joins the queue)
  queue   waiting in the queue, from admission until its batch starts
  batch   the onnxruntime run that served it; a batch serves several requests, so each request gets its own
          `batch` span over the same interval, carrying mlgit.batch.rows and mlgit.batch.requests and a
          link to every other request's server span in that batch (one trace per request stays readable,
          and the links show who shared the run)
  encode  from the batch's end until the response body is built (includes resuming the request's task)

Children are recorded after the fact from the runner's timestamps (no context switching on the hot path).
The response carries the server span's `traceparent`, so a client can find its trace.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import ServerSettings

SERVICE_NAME = "mlgit-serving"


class Tracing:
    """One TracerProvider per model (service.name `mlgit-serving-<model>`), made on its first request."""

    def __init__(self, endpoint: str, sample_rate: float) -> None:
        # Imported here, not at module level: with tracing off, no OpenTelemetry SDK is loaded at all.
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._endpoint = endpoint
        self._sampler = ParentBased(TraceIdRatioBased(sample_rate))
        self._classes = (OTLPSpanExporter, Resource, TracerProvider, BatchSpanProcessor)
        self._propagator = TraceContextTextMapPropagator()
        self._trace = trace
        self._providers: list[Any] = []
        self._tracers: dict[str, Any] = {}

    def _tracer(self, model: str) -> Any:
        tracer = self._tracers.get(model)
        if tracer is None:
            exporter_class, resource_class, provider_class, processor_class = self._classes
            provider = provider_class(
                sampler=self._sampler,
                resource=resource_class.create({"service.name": f"{SERVICE_NAME}-{model}", "mlgit.model": model}),
            )
            provider.add_span_processor(processor_class(exporter_class(endpoint=self._endpoint)))
            self._providers.append(provider)
            tracer = self._tracers[model] = provider.get_tracer("mlgit_serving")
        return tracer

    def begin(self, headers: Mapping[str, str], path: str, model: str, version: str) -> RequestTrace:
        """Start the server span of one inference request, a child of the incoming `traceparent` if any."""
        parent = self._propagator.extract(headers)
        tracer = self._tracer(model)
        span = tracer.start_span(
            "POST /v2/models/{model}/infer",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={
                "http.request.method": "POST",
                "url.path": path,
                "mlgit.model": model,
                "mlgit.model.version": version,
            },
        )
        return RequestTrace(self, tracer, span)


class RequestTrace:
    """The spans of one request; the runner fills in its queue and batch timestamps (time.perf_counter)."""

    __slots__ = ("_tracer", "_tracing", "batch", "enqueued", "finished", "rows", "span", "started")

    def __init__(self, tracing: Tracing, tracer: Any, span: Any) -> None:
        self._tracing = tracing
        self._tracer = tracer
        self.span = span
        self.enqueued: float | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.rows = 0
        self.batch: list[RequestTrace] = []

    def ran(self, enqueued: float, started: float, finished: float, rows: int, batch: list[RequestTrace]) -> None:
        """Called by the runner once the batch that served this request has run."""
        self.enqueued, self.started, self.finished, self.rows, self.batch = enqueued, started, finished, rows, batch

    def finish(self, status: int) -> str:
        """End every span (children from the recorded timestamps); returns the `traceparent` to echo."""
        trace = self._tracing._trace
        span = self.span
        now_ns, now = time.time_ns(), time.perf_counter()

        def ns(moment: float) -> int:
            return now_ns - int((now - moment) * 1e9)

        if span.is_recording():  # not sampled: the context is still echoed, nothing is recorded
            tracer, parent = self._tracer, trace.set_span_in_context(span)
            start = span.start_time
            end_decode = ns(self.enqueued) if self.enqueued is not None else now_ns
            tracer.start_span("decode", parent, start_time=start).end(end_time=end_decode)
            if self.started is not None and self.finished is not None and self.enqueued is not None:
                tracer.start_span("queue", parent, start_time=end_decode).end(end_time=ns(self.started))
                links = [trace.Link(other.span.get_span_context()) for other in self.batch if other is not self]
                attributes = {"mlgit.batch.rows": self.rows, "mlgit.batch.requests": max(len(self.batch), 1)}
                batch = tracer.start_span(
                    "batch", parent, links=links, attributes=attributes, start_time=ns(self.started)
                )
                batch.end(end_time=ns(self.finished))
                if status == 200:
                    tracer.start_span("encode", parent, start_time=ns(self.finished)).end(end_time=now_ns)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(trace.StatusCode.ERROR)
        span.end(end_time=now_ns)
        return self.traceparent()

    def traceparent(self) -> str:
        """The server span's context as a W3C `traceparent` header value."""
        context = self.span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def from_settings(settings: ServerSettings) -> Tracing | None:
    """Tracing as configured, or None (nothing imported) when no endpoint is set."""
    if settings.tracing_endpoint is None:
        return None
    return Tracing(settings.tracing_endpoint, settings.tracing_sample_rate)
