"""Payload logging: real servers POSTing CloudEvents batches to a real HTTP sink the test runs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from ruamel.yaml import YAML

from mlgit.config.monitoring import PayloadLoggingConfig
from mlgit.templating import render_template
from mlgit_serving import payload_log
from mlgit_serving.payload_log import REDACTED, PayloadLog, PayloadLogConfig, redact
from mlgit_serving.settings import ServerSettings

from .conftest import RunningServer, start_server, stop_server

BODY = {
    "id": "req-1",
    "parameters": {"customer": "alice", "channel": "web"},
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}],
}


class Sink:
    """Collects the POSTs it receives; while `hold` is clear it keeps every request waiting (a slow sink)."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.hold = threading.Event()
        self.hold.set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.hold.wait()
                sink.posts.append((dict(self.headers), json.loads(body)))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [event for _, batch in self.posts for event in batch]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink()
    yield running
    running.close()


def events_total(server: RunningServer, outcome: str) -> float:
    registry = server.app.state.serving.metrics.registry
    return registry.get_sample_value("mlgit_payload_events_total", {"outcome": outcome}) or 0.0


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_events_arrive_as_cloudevents_with_redaction(model_repository: Path, sink: Sink) -> None:
    server = start_server(
        model_repository,
        payload_log_url=sink.url,
        payload_log_redact=["input", "customer"],
        payload_log_batch_size=3,
        payload_log_flush_seconds=60,  # full batches go at once: only batch_size can send these
    )
    try:
        server.wait_loaded()
        with httpx.Client(base_url=server.url) as http:
            for n in range(6):
                assert http.post("/v2/models/iris/infer", json={**BODY, "id": f"req-{n}"}).status_code == 200
        wait_for(lambda: len(sink.events()) == 6, "6 events")
    finally:
        stop_server(server)
    assert all(h["Content-Type"] == "application/cloudevents-batch+json" for h, _ in sink.posts)
    assert [len(batch) for _, batch in sink.posts] == [3, 3]
    events = sink.events()
    assert sorted(e["mlgitrequestid"] for e in events) == [f"req-{n}" for n in range(6)]
    assert len({e["id"] for e in events}) == 6
    event = events[0]
    assert event["specversion"] == "1.0" and event["type"] == "org.mlgit.inference"
    assert event["source"] == "/v2/models/iris/versions/2" and event["datacontenttype"] == "application/json"
    assert event["time"].endswith("+00:00")
    request, response = event["data"]["request"], event["data"]["response"]
    assert request["inputs"][0]["data"] == REDACTED and request["inputs"][0]["shape"] == [1, 4]
    assert request["parameters"] == {"customer": REDACTED, "channel": "web"}
    assert "5.1" not in json.dumps(events) and "alice" not in json.dumps(events)
    assert response["model_name"] == "iris" and {o["name"] for o in response["outputs"]} == {"label", "probabilities"}
    assert all(isinstance(o["data"], list) for o in response["outputs"])
    assert events_total(server, "sent") == 6


def test_a_stalled_sink_never_holds_inference_up(model_repository: Path, sink: Sink) -> None:
    sink.hold.clear()  # every POST waits until the end of the test
    server = start_server(
        model_repository,
        payload_log_url=sink.url,
        payload_log_batch_size=1,
        payload_log_queue_size=2,
        payload_log_flush_seconds=0.01,
    )
    try:
        server.wait_loaded()
        with httpx.Client(base_url=server.url) as http:
            statuses = [http.post("/v2/models/iris/infer", json=BODY).status_code for _ in range(20)]
        assert statuses == [200] * 20
        # At most one batch of 1 is out at the sink and 2 wait in the queue: the rest were dropped.
        assert events_total(server, "dropped") >= 17
        sink.hold.set()
        wait_for(lambda: events_total(server, "dropped") + events_total(server, "sent") == 20, "the queue to drain")
    finally:
        stop_server(server)
    assert len(sink.events()) == events_total(server, "sent") <= 3


def test_a_dead_sink_counts_failures_and_requests_succeed(model_repository: Path, sink: Sink) -> None:
    dead_url = sink.url
    sink.close()  # nothing listens there any more: connection refused
    server = start_server(model_repository, payload_log_url=dead_url, payload_log_flush_seconds=0.01)
    try:
        server.wait_loaded()
        with httpx.Client(base_url=server.url) as http:
            assert [http.post("/v2/models/iris/infer", json=BODY).status_code for _ in range(3)] == [200] * 3
        wait_for(lambda: events_total(server, "failed") >= 1, "the retries to give up")
    finally:
        stop_server(server)
    assert events_total(server, "sent") == 0
    assert events_total(server, "failed") == 3


def test_sample_rate_zero_sends_nothing_and_the_queue_bound_holds() -> None:
    config = PayloadLogConfig("http://127.0.0.1:9/", 1.0, frozenset(), 10, 3, 1.0, 1.0)
    registry = CollectorRegistry()
    log = PayloadLog(config, registry)
    for _ in range(10):
        log.offer(
            request_id=None,
            model="m",
            version="1",
            request=b"{}",
            request_header_length=None,
            response=b"{}",
            response_header_length=None,
        )
    assert log._queue.qsize() == 3
    assert registry.get_sample_value("mlgit_payload_events_total", {"outcome": "dropped"}) == 7
    quiet = PayloadLog(PayloadLogConfig("http://127.0.0.1:9/", 0.0, frozenset(), 10, 3, 1.0, 1.0), CollectorRegistry())
    assert not any(quiet.sampled() for _ in range(100))


def test_redact_tensors_and_keys_at_any_depth() -> None:
    value = {
        "outputs": [{"name": "score", "data": [1]}, {"name": "label", "data": [2]}],
        "parameters": {"nested": [{"token": "s3cret", "ok": 1}]},
    }
    assert redact(value, frozenset({"score", "token"})) == {
        "outputs": [{"name": "score", "data": REDACTED}, {"name": "label", "data": [2]}],
        "parameters": {"nested": [{"token": REDACTED, "ok": 1}]},
    }


def test_the_rendered_patch_is_what_the_runtime_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """mlgit.yaml monitoring.payload_logging -> the overlay patch's env -> the server's settings."""
    written = {
        "url": "https://sink.example.com/e",
        "sample_rate": 0.25,
        "redact": ["input", "customer"],
        "batch_size": 7,
    }
    config = PayloadLoggingConfig.model_validate(written)
    patch = YAML(typ="safe").load(
        render_template("manifests", "overlays/env/payload-logging.yaml.j2", name="m", payload=config)
    )
    for variable in patch["spec"]["template"]["spec"]["containers"][0]["env"]:
        monkeypatch.setenv(variable["name"], variable["value"])
    settings = ServerSettings()
    assert settings.payload_log_url == written["url"] and settings.payload_log_sample_rate == 0.25
    assert settings.payload_log_redact == ["input", "customer"] and settings.payload_log_batch_size == 7
    assert (
        settings.payload_log_queue_size
        == config.queue_size
        == ServerSettings.model_fields["payload_log_queue_size"].default
    )
    assert settings.payload_log_flush_seconds == config.flush_seconds


def test_redact_matches_only_string_names() -> None:
    """A request may carry {"name": [...]} anywhere in its parameters: no tensor's name, and no TypeError."""
    value = {"parameters": {"x": {"name": ["a"], "data": 1}, "y": {"name": {"b": 1}, "data": 2}}}
    assert redact(value, frozenset({"a"})) == value


def test_an_odd_request_never_stops_payload_logging(model_repository: Path, sink: Sink) -> None:
    server = start_server(
        model_repository, payload_log_url=sink.url, payload_log_redact=["a"], payload_log_batch_size=1
    )
    try:
        server.wait_loaded()
        with httpx.Client(base_url=server.url) as http:
            odd = {**BODY, "id": "r2", "parameters": {"x": {"name": ["a"], "data": 1}}}
            assert http.post("/v2/models/iris/infer", json=odd).status_code == 200
            wait_for(lambda: len(sink.events()) == 1, "the odd request's event")
            assert http.post("/v2/models/iris/infer", json={**BODY, "id": "r3"}).status_code == 200
            wait_for(lambda: len(sink.events()) == 2, "the next request's event")
    finally:
        stop_server(server)
    assert [e["mlgitrequestid"] for e in sink.events()] == ["r2", "r3"]


def test_an_event_that_cannot_be_encoded_is_failed_and_the_task_goes_on(
    sink: Sink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = payload_log.to_cloud_event

    def flaky(event: Any, names: frozenset[str]) -> dict[str, Any]:
        if event.request_id == "bad":
            raise RuntimeError("secret payload text")
        return real(event, names)

    monkeypatch.setattr(payload_log, "to_cloud_event", flaky)
    registry = CollectorRegistry()
    log = PayloadLog(PayloadLogConfig(sink.url, 1.0, frozenset(), 2, 100, 0.05, 5.0), registry)

    def outcome(name: str) -> float:
        return registry.get_sample_value("mlgit_payload_events_total", {"outcome": name}) or 0.0

    def offer(request_id: str) -> None:
        log.offer(
            request_id=request_id,
            model="m",
            version="1",
            request=b"{}",
            request_header_length=None,
            response=b"{}",
            response_header_length=None,
        )

    async def scenario() -> None:
        log.start()
        for request_id in ("bad", "good-1", "bad", "bad"):  # batches of 2: one all bad
            offer(request_id)
        for _ in range(500):
            if outcome("sent") + outcome("failed") == 4:
                break
            await asyncio.sleep(0.01)
        offer("good-2")  # the task still takes events
        for _ in range(500):
            if outcome("sent") == 2:
                break
            await asyncio.sleep(0.01)
        assert log._task is not None and not log._task.done()
        await log.stop()

    with caplog.at_level(logging.ERROR, logger="mlgit_serving.payload_log"):
        asyncio.run(scenario())
    assert outcome("sent") == 2 and outcome("failed") == 3
    assert sorted(e["mlgitrequestid"] for e in sink.events()) == ["good-1", "good-2"]
    logged = [r for r in caplog.records if r.getMessage() == "payload events could not be encoded"]
    assert len(logged) == 1 and logged[0].error == "RuntimeError"  # once per type, and never the payload
    assert "secret" not in caplog.text
