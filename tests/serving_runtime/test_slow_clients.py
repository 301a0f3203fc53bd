"""Clients that stall or vanish mid-upload: a 408 frees their queue slot, a disconnect is no server error."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import RunningServer, start_server, stop_server

BODY = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()


@pytest.fixture(scope="module")
def impatient(model_repository: Path) -> Iterator[RunningServer]:
    running = start_server(model_repository, request_body_timeout_seconds=0.5)
    running.wait_ready()
    yield running
    stop_server(running)


def _partial_upload(server: RunningServer, model: str) -> socket.socket:
    """A POST that declares its whole body but sends only its first 10 bytes."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    sock.sendall(head.encode() + BODY[:10])
    return sock


def test_a_stalled_upload_gets_408_and_frees_its_slot(impatient: RunningServer) -> None:
    with _partial_upload(impatient, "tiny_queue") as stalled:  # tiny_queue admits one request at a time
        stalled.settimeout(10)
        answer = stalled.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "did not arrive within 0.5 s" in answer
    response = httpx.post(f"{impatient.url}/v2/models/tiny_queue/infer", content=BODY, timeout=10)
    assert response.status_code == 200, response.text


def test_a_client_that_disconnects_mid_upload_is_not_a_server_error(impatient: RunningServer) -> None:
    _partial_upload(impatient, "iris").close()
    metrics = ""
    for _ in range(200):  # the server notices the disconnect asynchronously
        metrics = httpx.get(f"{impatient.url}/metrics").text
        if re.search(r'mlgit_inference_requests_total\{model="iris",status="499"', metrics):
            break
    assert re.search(r'mlgit_inference_requests_total\{model="iris",status="499"', metrics)
    assert 'status="500"' not in metrics
