"""The server as a process: cold start, SIGTERM under load (drain), Ctrl-C, JSON logs on stderr."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import default_sigint

from .conftest import IRIS_SAMPLE, classifier, lookup, write_model

DRAIN_SECONDS = 20.0  # generous: the process exits as soon as the in-flight requests are answered
SHUTDOWN_DELAY = 4.0  # the window in which the test must see "not ready, still served": room for a busy machine
DEADLINE = 30.0  # for anything the test waits on: only a regression gets near it


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll CONDITION until it holds; fail naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.005)


class ServerProcess:
    """A server subprocess; its port is read from its own JSON log lines on stderr."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            args, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, preexec_fn=default_sigint
        )
        self.logs: list[dict[str, Any]] = []
        self.port: int | None = None
        self._listening = threading.Event()
        threading.Thread(target=self._read_logs, daemon=True).start()
        assert self._listening.wait(30), self.logs

    def _read_logs(self) -> None:
        for line in self.process.stderr:
            entry = json.loads(line)  # every line the server writes must be one JSON object
            self.logs.append(entry)
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", entry["message"])
            if match:
                self.port = int(match.group(1))
                self._listening.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        with httpx.Client(base_url=self.url) as http:

            def ready() -> bool:
                assert self.process.poll() is None, f"the server exited: {self.logs[-3:]}"
                return http.get("/v2/health/ready").status_code == 200

            wait_until(ready, "the server became ready")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_model(
        tmp_path,
        "iris",
        {"1": classifier(0.0)},
        {"batching": {"enabled": True, "max_batch_size": 16, "max_delay_ms": 5}},
        IRIS_SAMPLE,
    )
    write_model(
        tmp_path, "lookup", {"1": lookup()}, {"batching": {"enabled": True, "max_batch_size": 64, "max_delay_ms": 300}}
    )
    return tmp_path


@pytest.fixture
def serve_process(repository: Path) -> Iterator[ServerProcess]:
    """The server through `mlgit_serving.server.serve()`, exactly as `mlgit serve` runs it."""
    code = (
        "import sys; from pathlib import Path; from mlgit_serving.server import serve; "
        f"serve(Path(sys.argv[1]), '127.0.0.1', 0, drain_seconds={DRAIN_SECONDS}, "
        f"shutdown_delay_seconds={SHUTDOWN_DELAY})"
    )
    server = ServerProcess([sys.executable, "-c", code, str(repository)])
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=DEADLINE)


def _load(url: str, stop: threading.Event, outcomes: list[Any]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            try:
                outcomes.append(http.post("/v2/models/iris/infer", json=IRIS_SAMPLE).status_code)
            except httpx.HTTPError as exc:
                outcomes.append(repr(exc))


def test_sigterm_under_load_drains_without_losing_requests(serve_process: ServerProcess) -> None:
    """Order and outcome, not milliseconds (a busy machine stretches every step): after SIGTERM readiness
    fails while requests are still served, then the listener closes, then the request still in flight and
    those queued behind it are answered, then the process exits 0, no earlier than the shutdown delay."""
    server = serve_process
    server.wait_ready()

    # A request that is in flight across the whole shutdown: its body arrives only when released.
    release = threading.Event()
    held_body = json.dumps({"inputs": [{"name": "index", "datatype": "INT64", "shape": [2], "data": [3, 4]}]})

    def slow_body() -> Iterator[bytes]:
        yield held_body[:5].encode()
        release.wait(DEADLINE)
        yield held_body[5:].encode()

    held_result: list[httpx.Response] = []
    held = threading.Thread(
        target=lambda: held_result.append(
            httpx.post(f"{server.url}/v2/models/lookup/infer", content=slow_body(), timeout=DEADLINE)
        ),
        daemon=True,
    )
    held.start()
    # Requests queued behind it: the batcher waits up to max_delay (300 ms) for the held one.
    queued: list[httpx.Response] = []
    queued_threads = [
        threading.Thread(
            target=lambda i=i: queued.append(
                httpx.post(
                    f"{server.url}/v2/models/lookup/infer",
                    timeout=DEADLINE,
                    json={"inputs": [{"name": "index", "datatype": "INT64", "shape": [1], "data": [i]}]},
                )
            ),
            daemon=True,
        )
        for i in range(4)
    ]

    stop, outcomes = threading.Event(), []
    workers = [threading.Thread(target=_load, args=(server.url, stop, outcomes), daemon=True) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        with httpx.Client(base_url=server.url) as probe:
            wait_until(lambda: len(outcomes) >= 50, "50 requests answered under load")
            for thread in queued_threads:
                thread.start()
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # Like a load balancer: stop sending new requests once readiness fails.
            wait_until(lambda: probe.get("/v2/health/ready").status_code != 200, "readiness failed after SIGTERM")
            # Requests keep being served until the shutdown delay has passed, then the listener closes.
            assert probe.post("/v2/models/iris/infer", json=IRIS_SAMPLE).status_code == 200
            assert server.process.poll() is None and not held_result  # still draining, the held one waits
    finally:
        stop.set()
        for worker in workers:
            worker.join(DEADLINE)

    # The listener closes (a new connection is refused or dropped) while the held request is still in flight.
    def listener_closed() -> bool:
        try:
            httpx.get(f"{server.url}/v2/health/live", headers={"Connection": "close"})
        except httpx.TransportError:
            return True
        return False

    try:
        wait_until(listener_closed, "the listener closed after the shutdown delay")
        assert server.process.poll() is None and not held_result  # closed to new clients, not yet exited
    finally:
        release.set()
    held.join(DEADLINE)
    for thread in queued_threads:
        thread.join(DEADLINE)
    server.process.wait(timeout=DEADLINE)
    exited_after = time.monotonic() - signalled

    assert set(outcomes) == {200}, [o for o in outcomes if o != 200][:5]
    assert held_result and held_result[0].status_code == 200, held_result
    assert held_result[0].json()["outputs"][0]["data"] == [30.0, 40.0]
    assert [r.status_code for r in queued] == [200] * 4
    assert server.process.returncode == 0
    assert exited_after >= SHUTDOWN_DELAY  # a busy machine only makes it later
    messages = [entry["message"] for entry in server.logs]
    assert "shutting down" in messages


def test_console_entry_point_reads_environment_and_stops_on_ctrl_c(repository: Path) -> None:
    server = ServerProcess(
        [sys.executable, "-m", "mlgit_serving", "--host", "127.0.0.1"],
        env={
            "MLGIT_SERVING_MODEL_REPOSITORY": str(repository),
            "MLGIT_SERVING_PORT": "0",
            "MLGIT_SERVING_ACCESS_LOG": "true",
        },
    )
    try:
        server.wait_ready()
        response = httpx.post(f"{server.url}/v2/models/iris/infer", json={**IRIS_SAMPLE, "id": "req-42"})
        assert response.status_code == 200
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=DEADLINE) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    access = [e for e in server.logs if e["message"] == "inference request"]
    assert access and access[0]["request_id"] == "req-42" and access[0]["status"] == 200


def test_missing_repository_fails_fast(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlgit_serving", "--model-repository", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    error = json.loads(result.stderr.splitlines()[-1])
    assert error["level"] == "error" and "is not a directory" in error["message"]
