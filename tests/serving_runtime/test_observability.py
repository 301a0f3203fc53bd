"""Prometheus metrics, OpenAPI docs, structured JSON logs with request ids, sampled audit logging."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from mlgit_serving.logs import JsonFormatter

from .conftest import IRIS_SAMPLE, RunningServer, classifier, start_server, stop_server, write_model


def _value(metrics: str, line_start: str) -> float:
    match = re.search(rf"^{re.escape(line_start)} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{line_start} not in /metrics"
    return float(match.group(1))


def test_prometheus_metrics(http: httpx.Client) -> None:
    for _ in range(3):
        assert http.post("/v2/models/iris/versions/1/infer", json=IRIS_SAMPLE).status_code == 200
    assert http.post("/v2/models/iris/versions/1/infer", json={"inputs": []}).status_code == 400
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    metrics = response.text
    labels = '{model="iris",version="1"}'
    assert _value(metrics, 'mlgit_inference_requests_total{model="iris",status="200",version="1"}') >= 3
    assert _value(metrics, 'mlgit_inference_requests_total{model="iris",status="400",version="1"}') >= 1
    assert _value(metrics, f"mlgit_inference_request_duration_seconds_count{labels}") >= 4
    for histogram in ("queue_duration_seconds", "compute_duration_seconds", "batch_size"):
        assert _value(metrics, f"mlgit_inference_{histogram}_count{labels}") >= 3
    assert _value(metrics, f"mlgit_inference_pending_requests{labels}") == 0
    assert _value(metrics, f"mlgit_model_ready{labels}") == 1
    assert "process_resident_memory_bytes" in metrics


def test_openapi_and_docs(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    infer = schema["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"]["required"] == ["inputs"]
    assert {"200", "400", "404", "413", "503"} <= set(infer["responses"])
    assert "/v2/models/{model_name}/versions/{model_version}/ready" in schema["paths"]
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord("mlgit_serving.requests", logging.WARNING, __file__, 1, "failed %s", ("x",), None)
    record.request_id = "abc"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed x" and line["level"] == "warning" and line["request_id"] == "abc"
    assert line["logger"] == "mlgit_serving.requests" and line["time"].endswith("+00:00")


def test_failed_requests_are_logged_with_their_id(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    bad = {"id": "req-7", "inputs": [{**IRIS_SAMPLE["inputs"][0], "datatype": "INT8"}]}
    with caplog.at_level(logging.WARNING, logger="mlgit_serving.requests"):
        assert http.post("/v2/models/iris/infer", json=bad).status_code == 400
        assert http.post("/v2/models/iris/infer", content=b"{", headers={"X-Request-ID": "hdr-1"}).status_code == 400
    failures = [r for r in caplog.records if r.getMessage() == "inference request failed"]
    assert [(r.request_id, r.status) for r in failures] == [("req-7", 400), ("hdr-1", 400)]
    assert "expected datatype FP32" in failures[0].error


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root: Path = tmp_path_factory.mktemp("audited")
    write_model(root, "iris", {"1": classifier(0.0)}, {}, IRIS_SAMPLE)
    running = start_server(root, audit_sample_rate=1.0, audit_max_bytes=40)
    running.wait_ready()
    yield running
    stop_server(running)


def test_sampled_audit_log_is_capped(audited: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    client = triton.InferenceServerClient(url=audited.address)
    x = np.ones((2, 4), dtype=np.float32)
    with caplog.at_level(logging.INFO, logger="mlgit_serving.audit"):
        for binary in (False, True):
            tensor = triton.InferInput("input", [2, 4], "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            client.infer(
                "iris",
                [tensor],
                request_id=f"audit-{binary}",
                outputs=[triton.InferRequestedOutput("label", binary_data=binary)],
            )
    client.close()
    records = [r for r in caplog.records if r.getMessage() == "inference audit"]
    assert [r.request_id for r in records] == ["audit-False", "audit-True"]
    json_record, binary_record = records
    assert json_record.request.startswith('{"id":"audit-False"') and "<truncated" in json_record.request
    assert len(json_record.request.split(" <truncated")[0]) <= 40
    assert binary_record.request.endswith("<+32 bytes of binary tensor data>")
    assert binary_record.response.endswith("<+16 bytes of binary tensor data>")
    assert binary_record.status == 200 and binary_record.model == "iris" and binary_record.version == "1"
