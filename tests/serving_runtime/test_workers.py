"""Several worker processes on one port (MLGIT_SERVING_WORKERS): spread, merged metrics, drain, restarts.

The kernel spreads connections over the workers' SO_REUSEPORT sockets by a hash of the client's address
and port, so the tests open many connections: with N of them all land on one of two workers with
probability 2^(1-N).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlgit_serving.cpus import MAX_WORKERS, worker_count
from mlgit_serving.settings import ServerSettings
from mlgit_serving.worker_metrics import merge
from mlgit_serving.worker_readiness import ReadinessBoard

from .conftest import IRIS_SAMPLE, classifier, lookup, start_server, stop_server, write_model
from .test_lifecycle import DEADLINE, ServerProcess, wait_until

CONNECTIONS = 24


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_model(
        tmp_path / "models",
        "iris",
        {"1": classifier(0.0)},
        {"batching": {"enabled": True, "max_batch_size": 16, "max_delay_ms": 5}},
        IRIS_SAMPLE,
    )
    write_model(tmp_path / "models", "lookup", {"1": lookup()})
    return tmp_path / "models"


def start(repository: Path, **settings: object) -> ServerProcess:
    """`serve()` as `mlgit serve` runs it, with two workers."""
    overrides = ", ".join(f"{name}={value!r}" for name, value in {"workers": 2, **settings}.items())
    code = (
        "import sys; from pathlib import Path; from mlgit_serving.server import serve; "
        f"serve(Path(sys.argv[1]), '127.0.0.1', 0, {overrides})"
    )
    return ServerProcess([sys.executable, "-c", code, str(repository)])


@pytest.fixture
def server(repository: Path) -> Iterator[ServerProcess]:
    running = start(repository, drain_seconds=20.0)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(timeout=DEADLINE)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=DEADLINE).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def infer_on_new_connections(url: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        with httpx.Client(base_url=url, timeout=DEADLINE) as client:  # a new connection, a new source port
            statuses.append(client.post("/v2/models/iris/infer", json=IRIS_SAMPLE).status_code)
    return statuses


def worker_pids(supervisor: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()}


def wait_all_ready(url: str) -> None:
    """Until both workers listen and have loaded the model (readiness answers for one worker only)."""
    ready = ("mlgit_model_ready", (("model", "iris"), ("version", "1")))

    def all_ready() -> bool:
        try:
            metrics = scrape(url)
        except httpx.TransportError:  # the metrics port opens as the supervisor starts its listener
            return False
        return metrics.get(("mlgit_workers", ())) == 2 and metrics.get(ready) == 1.0

    wait_until(all_ready, "every worker has loaded the model")


def not_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", headers={"Connection": "close"}, timeout=DEADLINE).status_code == 503
    except httpx.TransportError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_requests_spread_over_workers_and_a_scrape_sees_their_sum(server: ServerProcess) -> None:
    wait_all_ready(f"{server.url}/metrics")
    assert len(worker_pids(server.process.pid)) == 2
    assert infer_on_new_connections(server.url, CONNECTIONS) == [200] * CONNECTIONS

    metrics = scrape(f"{server.url}/metrics")
    ok = ("mlgit_inference_requests_total", (("model", "iris"), ("status", "200"), ("version", "1")))
    assert metrics[ok] == CONNECTIONS  # whichever worker answered the scrape, it counted both
    assert metrics[("mlgit_workers", ())] == 2
    per_worker = [metrics[("mlgit_worker_requests_total", (("worker", str(i)),))] for i in (0, 1)]
    assert sum(per_worker) == CONNECTIONS and min(per_worker) > 0, per_worker
    # Histograms add up bucket by bucket too.
    count = ("mlgit_inference_request_duration_seconds_count", (("model", "iris"), ("version", "1")))
    assert metrics[count] == CONNECTIONS


def test_sigterm_drains_every_worker(server: ServerProcess) -> None:
    """Requests in flight on many connections (so on both workers) when SIGTERM comes are all answered,
    then every worker and the supervisor exit 0."""
    wait_all_ready(f"{server.url}/metrics")
    release = threading.Event()
    body = json.dumps({"inputs": [{"name": "index", "datatype": "INT64", "shape": [1], "data": [3]}]})

    def held_body() -> Iterator[bytes]:
        yield body[:5].encode()
        release.wait(DEADLINE)
        yield body[5:].encode()

    answers: list[int | str] = []

    def held_request() -> None:
        try:
            answers.append(
                httpx.post(f"{server.url}/v2/models/lookup/infer", content=held_body(), timeout=DEADLINE).status_code
            )
        except httpx.HTTPError as exc:
            answers.append(repr(exc))

    threads = [threading.Thread(target=held_request, daemon=True) for _ in range(12)]
    for thread in threads:
        thread.start()
    open_connections = ("mlgit_connections_open", ())
    in_flight = "12 requests in flight (and the scrape)"
    wait_until(lambda: scrape(f"{server.url}/metrics")[open_connections] >= 13, in_flight)
    workers = worker_pids(server.process.pid)
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: any(e["message"] == "shutting down" for e in server.logs), "a worker began to drain")
    release.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert server.process.wait(timeout=DEADLINE) == 0
    assert answers == [200] * 12
    assert sum(e["message"] == "shutting down" for e in server.logs) == 2
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_dead_worker_is_restarted(repository: Path) -> None:
    metrics_url = f"http://127.0.0.1:{(port := free_port())}/metrics"
    server = start(repository, metrics_port=port)
    try:
        wait_all_ready(metrics_url)
        victim = min(worker_pids(server.process.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: any(e["message"] == "worker died; restarting it" for e in server.logs), "restart logged")
        # The pod is not ready until the new worker has loaded the model too.
        wait_until(lambda: not_ready(server.url), "readiness failed during the restart")
        wait_until(lambda: len(worker_pids(server.process.pid) - {victim}) == 2, "a new worker started")
        wait_all_ready(metrics_url)
        assert infer_on_new_connections(server.url, CONNECTIONS) == [200] * CONNECTIONS
        metrics = scrape(metrics_url)  # the supervisor's metrics port merges the workers too
        assert all(metrics[("mlgit_worker_requests_total", (("worker", str(i)),))] > 0 for i in (0, 1))
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DEADLINE) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()


def test_a_worker_failing_at_start_up_stops_the_server(repository: Path, tmp_path: Path) -> None:
    bad_certificate = tmp_path / "cert.pem"
    bad_certificate.write_text("not a certificate\n")
    result = subprocess.run(
        [sys.executable, "-m", "mlgit_serving", "--model-repository", str(repository), "--port", "0"],
        env={**os.environ, "MLGIT_SERVING_WORKERS": "2", "MLGIT_SERVING_TLS_CERT_FILE": str(bad_certificate)},
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
    )
    assert result.returncode == 1
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert "worker exited before it listened; stopping the server" in messages


def test_workers_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServerSettings(workers="auto").workers == "auto"
    assert ServerSettings(workers=3).workers == 3
    monkeypatch.setenv("MLGIT_SERVING_WORKERS", "4")
    assert ServerSettings().workers == 4
    for bad in (0, "many", MAX_WORKERS + 1, True):
        with pytest.raises(ValueError, match=rf"workers\n.*: give a whole number from 1 to {MAX_WORKERS}, or auto"):
            ServerSettings(workers=bad)


def test_worker_logs_name_the_worker_module(server: ServerProcess) -> None:
    wait_until(lambda: sum(e["message"] == "worker listening" for e in server.logs) == 2, "both workers listen")
    assert {e["logger"] for e in server.logs if e["message"] == "worker listening"} == {"mlgit_serving.worker"}


def test_a_taken_metrics_port_stops_the_supervisor_with_one_log_line(repository: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlgit_serving",
                "--model-repository",
                str(repository),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            env={**os.environ, "MLGIT_SERVING_WORKERS": "2", "MLGIT_SERVING_METRICS_PORT": str(busy)},
            capture_output=True,
            text=True,
            timeout=DEADLINE * 2,
        )
    assert result.returncode == 1
    last = json.loads(result.stderr.splitlines()[-1])
    assert last["level"] == "error"
    assert last["message"] == f"metrics_port: cannot listen on 127.0.0.1:{busy}: Address already in use"


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1), ("100000 100000", 1)],
)
def test_auto_follows_the_cgroup_cpu_quota(tmp_path: Path, cpu_max: str, expected: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    assert worker_count("auto", tmp_path) == (affinity if expected is None else min(expected, affinity))
    assert worker_count(5, tmp_path) == 5


def test_merge_sums_counters_and_keeps_readiness_the_weakest() -> None:
    one = (
        "# TYPE mlgit_inference_requests counter\n"
        'mlgit_inference_requests_total{model="m",status="200",version="1"} 3\n'
        'mlgit_inference_requests_created{model="m",status="200",version="1"} 100\n'
        "# TYPE mlgit_model_ready gauge\n"
        'mlgit_model_ready{model="m",version="1"} 1\n'
        "# TYPE mlgit_inference_pending_requests gauge\n"
        'mlgit_inference_pending_requests{model="m",version="1"} 2\n'
    )
    two = one.replace("} 3\n", "} 4\n").replace("} 100\n", "} 50\n").replace('"1"} 1\n', '"1"} 0\n')
    merged = {
        (s.name, s.labels.get("worker")): s.value for family in merge([("0", one), ("1", two)]) for s in family.samples
    }
    assert merged[("mlgit_inference_requests_total", None)] == 7
    assert merged[("mlgit_inference_requests_created", None)] == 50
    assert merged[("mlgit_model_ready", None)] == 0
    assert merged[("mlgit_inference_pending_requests", None)] == 4
    assert merged[("mlgit_worker_requests_total", "0")] == 3
    assert merged[("mlgit_worker_requests_total", "1")] == 4
    assert merged[("mlgit_workers", None)] == 2


def test_readiness_board_is_shared_by_the_workers() -> None:
    supervisor_view, fd = ReadinessBoard.create(3)
    worker_1 = ReadinessBoard(fd, 3)  # what worker 1 maps from the descriptor it inherits
    assert worker_1.others_not_ready(1) == ["worker(s) 0, 2 of 3 not ready (loading or restarting)"]
    ReadinessBoard(fd, 3).set(0, True)
    ReadinessBoard(fd, 3).set(2, True)
    assert worker_1.others_not_ready(1) == []
    supervisor_view.set(2, False)  # the supervisor saw worker 2 die
    assert worker_1.others_not_ready(1) == ["worker(s) 2 of 3 not ready (loading or restarting)"]


def test_a_worker_answers_not_ready_while_another_is(repository: Path) -> None:
    running = start_server(repository)
    try:
        running.wait_ready()
        running.app.state.serving.peers_not_ready = lambda: ["worker(s) 1 of 2 not ready (loading or restarting)"]
        with httpx.Client(base_url=running.url) as http:
            answer = http.get("/v2/health/ready")
            assert answer.status_code == 503 and "worker(s) 1 of 2 not ready" in answer.json()["error"]
            running.app.state.serving.peers_not_ready = None
            assert http.get("/v2/health/ready").status_code == 200
    finally:
        stop_server(running)
