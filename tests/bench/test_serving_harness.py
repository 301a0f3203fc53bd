"""bench/serving: the harness's own logic (not the numbers): a wrong answer keeps a server's cells out, a
server's CPU includes its child processes, and the targets compare with the best peer."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort

from tests.conftest import REPO_ROOT

SERVING = REPO_ROOT / "bench" / "serving"


def bench_module(name: str) -> ModuleType:
    """bench/serving/<name>.py under a name of its own (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"mlgit_bench_{name}", SERVING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bodies, load, models, report = (bench_module(n) for n in ("bodies", "load", "models", "report"))
peers = bench_module("peers/__init__")


def test_the_answer_check_passes_the_plain_fastapi_peer_and_catches_a_wrong_output(tmp_path: Path) -> None:
    onnx.save(models.mlp_model(np.random.default_rng(0)), tmp_path / "mlp.onnx")
    row = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    expected = ort.InferenceSession(str(tmp_path / "mlp.onnx")).run(None, {"input": row})[0]
    body = bodies.oip_bodies(tmp_path, "mlp", row)["JSON"]
    port = peers.free_port()
    command = [sys.executable, str(SERVING / "peers" / "fastapi_peer.py"), "--port", str(port)]
    server = load.Server(
        [*command, "--models", str(tmp_path)], f"http://127.0.0.1:{port}/v2/health/ready", log=tmp_path / "log"
    )
    try:
        url = f"http://127.0.0.1:{port}/v2/models/mlp/infer"
        assert bodies.check_answer(url, body, expected) is None
        problem = bodies.check_answer(url, body, expected + 0.01)
        assert problem is not None and "differs from raw onnxruntime" in problem
        # the plain peer answers an unknown model with a 500 (a KeyError): any non-200 keeps the cells out
        assert "HTTP 500" in bodies.check_answer(url.replace("mlp", "nope"), body, expected)
    finally:
        server.stop()


BURN = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\ntime.sleep(60)"


def test_server_cpu_counts_its_child_processes() -> None:
    """BentoML and PyTriton serve from child processes: their CPU must be charged to the server."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {BURN!r}]); time.sleep(60)",
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while load.tree_cpu_seconds(parent.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load.tree_cpu_seconds(parent.pid) >= 0.5
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def cell(kind: str, system: str, model: str, req_s: float, **extra: object) -> dict[str, object]:
    base = {"kind": kind, "system": system, "model": model, "encoding": "JSON", "concurrency": 32, "rows": 1}
    return base | {"req_s": req_s, "rows_s": req_s, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0} | extra


def test_targets_compare_with_the_best_peer_that_answered_without_errors() -> None:
    results = [
        cell("raw", "raw onnxruntime, batch 1", "mlp", 30000, concurrency="-", p50_ms=0.02),
        cell("raw", "raw onnxruntime, batch 1", "cnn", 20000, concurrency="-"),
        cell("raw", "raw onnxruntime, batch 32", "cnn", 800, concurrency="-", rows=32, rows_s=25600),
        cell("mlgit", "mlgit-serving REST", "mlp", 3000),
        cell("peer", "MLServer", "mlp", 600),
        cell("peer", "Triton front end", "mlp", 1000),
        cell("peer", "BentoML (shed load)", "mlp", 5000, errors=12),
    ]
    (mlp_line,) = [line for line in report.targets(results, []) if line.startswith("MLP JSON")]
    assert "vs 1000 (Triton front end)" in mlp_line and "3.0x: met" in mlp_line
    results[5]["req_s"] = 1001
    (mlp_line,) = [line for line in report.targets(results, []) if line.startswith("MLP JSON")]
    assert mlp_line.endswith("MISSED")


WRK_SLOW = """Running 2s test @ http://127.0.0.1:52083/v2/models/cnn/infer
  1 threads and 32 connections
  Latency Distribution
     50%  190.76ms
     75%  217.49ms
     90%  492.03ms
     99%    1.75s
  260 requests in 2.01s, 106.26KB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:    129.62
""".replace("1.75s", "1.75s ")  # as wrk prints it, padded


def test_wrk_report_with_a_p99_in_seconds_is_read() -> None:
    """wrk pads a value in seconds with a trailing space: a slow peer's p99 must still be read."""
    numbers = load.parse_wrk(WRK_SLOW)
    assert numbers == {"req_s": 129.62, "requests": 260, "p50_ms": 190.76, "p99_ms": 1750.0, "errors": 5}
