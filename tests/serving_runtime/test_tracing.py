"""Tracing: spans of inference requests arrive at a real OTLP/HTTP receiver, continuing the caller's traceparent."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from mlgit_serving.settings import ServerSettings

from .conftest import IRIS_SAMPLE, RunningServer, start_server, stop_server
from .test_batching import _pending

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
BODY = {"inputs": IRIS_SAMPLE["inputs"]}


class Receiver:
    """An OTLP/HTTP traces endpoint: decodes each ExportTraceServiceRequest and queues its spans."""

    def __init__(self) -> None:
        self.spans: queue.Queue[tuple[str, Any]] = queue.Queue()  # (service.name, Span)
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                export = ExportTraceServiceRequest()
                export.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource_spans in export.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            received.put((attributes["service.name"], span))
                body = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, count: int) -> list[tuple[str, Any]]:
        """The next `count` spans to arrive (the exporter sends them in the order they ended)."""
        return [self.spans.get(timeout=30) for _ in range(count)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


@pytest.fixture(scope="module")
def traced(model_repository: Path, receiver: Receiver) -> Iterator[RunningServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # export within 20 ms rather than 5 s
        running = start_server(model_repository, tracing_endpoint=receiver.url)
        running.wait_ready()
        yield running
        stop_server(running)


def _attributes(span: Any) -> dict[str, Any]:
    return {a.key: a.value.int_value or a.value.string_value for a in span.attributes}


def test_a_request_continues_the_callers_trace(traced: RunningServer, receiver: Receiver) -> None:
    response = httpx.post(
        f"{traced.url}/v2/models/iris/infer", json=BODY, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    )
    assert response.status_code == 200, response.text
    version, trace_id, server_span, flags = response.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")

    spans = {span.name: (service, span) for service, span in receiver.take(5)}
    assert set(spans) == {"POST /v2/models/{model}/infer", "decode", "queue", "batch", "encode"}
    service, server = spans.pop("POST /v2/models/{model}/infer")
    assert service == "mlgit-serving-iris"
    assert server.trace_id.hex() == TRACE_ID and server.parent_span_id.hex() == CALLER_SPAN
    assert server.span_id.hex() == server_span
    assert _attributes(server)["http.response.status_code"] == 200
    for name, (_, child) in spans.items():
        assert child.trace_id.hex() == TRACE_ID and child.parent_span_id.hex() == server_span, name
        assert server.start_time_unix_nano <= child.start_time_unix_nano <= child.end_time_unix_nano
        assert child.end_time_unix_nano <= server.end_time_unix_nano, name
    order = [spans[name][1] for name in ("decode", "queue", "batch", "encode")]
    assert all(a.end_time_unix_nano <= b.start_time_unix_nano for a, b in itertools.pairwise(order))
    assert _attributes(spans["batch"][1]) == {"mlgit.batch.rows": 1, "mlgit.batch.requests": 1}


def test_a_failed_request_names_its_trace(traced: RunningServer, receiver: Receiver) -> None:
    bad = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}
    response = httpx.post(
        f"{traced.url}/v2/models/iris/infer", json=bad, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    )
    assert response.status_code == 400
    assert response.headers["traceparent"].split("-")[1] == TRACE_ID
    spans = {span.name: span for _, span in receiver.take(2)}  # no queue, batch or encode: it never ran
    assert set(spans) == {"decode", "POST /v2/models/{model}/infer"}
    assert _attributes(spans["POST /v2/models/{model}/infer"])["http.response.status_code"] == 400


def test_an_unsampled_caller_is_echoed_and_not_recorded(traced: RunningServer, receiver: Receiver) -> None:
    unsampled = "0af7651916cd43dd8448eb211c80319c"
    response = httpx.post(
        f"{traced.url}/v2/models/iris/infer", json=BODY, headers={"traceparent": f"00-{unsampled}-{CALLER_SPAN}-00"}
    )
    assert response.headers["traceparent"].startswith(f"00-{unsampled}-")
    assert response.headers["traceparent"].endswith("-00")
    # A sampled request afterwards: its spans are the next to arrive, so none of the unsampled one's came.
    httpx.post(f"{traced.url}/v2/models/iris/infer", json=BODY).raise_for_status()
    trace_ids = {span.trace_id.hex() for _, span in receiver.take(5)}
    assert len(trace_ids) == 1 and unsampled not in trace_ids


def test_requests_sharing_a_batch_link_to_each_other(traced: RunningServer, receiver: Receiver) -> None:
    model = traced.app.state.serving.repository.get("iris_batched").model
    busy = threading.Event()
    model._executor.submit(busy.wait, 60)  # hold the model so that the requests queue up behind it
    count = 4
    with httpx.Client(base_url=traced.url, timeout=30) as http, ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(http.post, "/v2/models/iris_batched/infer", json=BODY) for _ in range(count)]
        deadline = time.monotonic() + 30
        while _pending(traced, "iris_batched") < count:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        busy.set()
        responses = [future.result() for future in futures]
    assert all(response.status_code == 200 for response in responses)
    spans = [span for _, span in receiver.take(5 * count)]
    servers = {span.span_id for span in spans if span.parent_span_id == b""}
    assert {r.headers["traceparent"].split("-")[2] for r in responses} == {s.hex() for s in servers}
    batches = [span for span in spans if span.name == "batch"]
    assert max(_attributes(span)["mlgit.batch.requests"] for span in batches) > 1  # the first may run alone
    for span in batches:
        linked = {link.span_id for link in span.links}
        assert len(linked) == _attributes(span)["mlgit.batch.requests"] - 1
        assert linked <= servers - {span.parent_span_id}
        assert _attributes(span)["mlgit.batch.rows"] == _attributes(span)["mlgit.batch.requests"]


OFF = """
import json, sys, threading, time, httpx, uvicorn
from mlgit_serving.app import create_app
from mlgit_serving.settings import ServerSettings
app = create_app(ServerSettings(model_repository=sys.argv[1], host="127.0.0.1", port=0))
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.01)
url = "http://127.0.0.1:%d" % server.servers[0].sockets[0].getsockname()[1]
while httpx.get(url + "/v2/health/ready").status_code != 200:
    time.sleep(0.01)
response = httpx.post(url + "/v2/models/iris/infer", json=json.loads(sys.argv[2]),
                      headers={"traceparent": "00-%s-00f067aa0ba902b7-01" % ("1" * 32)})
sdk = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
print(json.dumps([response.status_code, response.headers.get("traceparent"), sdk]))
server.should_exit = True
"""


def test_tracing_off_imports_no_opentelemetry_sdk(model_repository: Path) -> None:
    """FastAPI itself imports opentelemetry-api; the SDK and the exporter must stay out."""
    result = subprocess.run(
        [sys.executable, "-c", OFF, str(model_repository), json.dumps(BODY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [200, None, []]


@pytest.mark.parametrize("endpoint", ["collector:4318/v1/traces", "grpc://collector:4317"])
def test_an_endpoint_must_be_an_http_url(endpoint: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="tracing_endpoint"):
        ServerSettings(tracing_endpoint=endpoint)
