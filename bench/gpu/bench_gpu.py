"""The CNN on CUDA: raw onnxruntime vs mlgit-serving, after two honesty checks. Run by bench/gpu/run.sh.

1. A session asked for CUDAExecutionProvider really runs on it (`session.get_providers()`): onnxruntime-gpu
   without a usable GPU logs an error and silently runs on the CPU.
2. mlgit-serving refuses to serve a `device: gpu` model when CUDA is not active (providers.check_active):
   started once with CUDA_VISIBLE_DEVICES="", the model must fail to load and the server never be ready.
3. Cells: raw onnxruntime on CUDA, batch 1 and 32; mlgit-serving on CUDA, 1-row requests (JSON and binary,
   concurrency 1 and 32, batching on) and 32-row binary requests (concurrency 1 and 8, batching off).

Exit status: 0 the table printed; 1 a check failed (the message says which).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "serving"))
from bodies import check_answer, oip_bodies  # noqa: E402
from load import WRK_SCRIPT, Server  # noqa: E402
from models import cnn_model  # noqa: E402
from peers import free_port  # noqa: E402
from report import table  # noqa: E402

CUDA = ("CUDAExecutionProvider", {"device_id": 0})
REFUSAL = "device is gpu and"  # the start of providers.check_active's message
DURATION = 3
# TF32 and cuDNN's algorithm choice move the last digits: close enough to catch garbage, not bit-exact.
TOLERANCE = {"rtol": 1e-2, "atol": 1e-3}


def fail(message: str) -> None:
    print(f"bench/gpu: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def cuda_session(path: Path) -> ort.InferenceSession:
    session = ort.InferenceSession(str(path), providers=[CUDA, "CPUExecutionProvider"])
    active = session.get_providers()
    if active[0] != "CUDAExecutionProvider":
        fail(
            f"CUDAExecutionProvider is not active (session runs on {active}; onnxruntime {ort.__version__}, "
            f"available {ort.get_available_providers()}): check the driver, CUDA 13 and cuDNN 9 libraries"
        )
    print(f"CUDA active: session providers {active}, onnxruntime {ort.__version__}", file=sys.stderr)
    return session


def raw(session: ort.InferenceSession, x: np.ndarray) -> dict[str, Any]:
    for _ in range(20):
        session.run(None, {"input": x})
    times = []
    end = time.perf_counter() + DURATION
    while (start := time.perf_counter()) < end:
        session.run(None, {"input": x})  # returns host arrays: every run includes the copy back
        times.append(time.perf_counter() - start)
    return {
        "req_s": len(times) / sum(times),
        "p50_ms": float(np.median(times)) * 1000,
        "p99_ms": float(np.percentile(times, 99)) * 1000,
        "errors": 0,
    }


def write_repository(root: Path, model: Path) -> None:
    for name, batched in (("cnn", False), ("cnn_batched", True)):
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.onnx").write_bytes(model.read_bytes())
        settings = {
            "device": "gpu",
            "batching": {"enabled": batched, "max_batch_size": 32, "max_delay_ms": 2.0},
        }
        (root / name / "model-settings.json").write_text(json.dumps(settings))


def check_refusal(root: Path, work: Path) -> None:
    """Start mlgit-serving with CUDA hidden: the gpu model must be refused, the server never ready."""
    port = free_port()
    log = work / "refusal.log"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "MLGIT_SERVING_MODEL_REPOSITORY": str(root)}
    command = [sys.executable, "-m", "mlgit_serving", "--port", str(port), "--host", "127.0.0.1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while REFUSAL not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                fail(f"with CUDA hidden the gpu model was not refused; server log:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=10).status_code
        except httpx.TransportError:
            ready = None  # not listening: not ready either
        if ready == 200:
            fail("with CUDA hidden the server reports ready although its gpu model was refused")
    finally:
        process.terminate()
        process.wait(timeout=60)
    text = log.read_text()
    print(f"refusal with CUDA hidden: ok ({text[text.index(REFUSAL) :][:300]})", file=sys.stderr)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mlgit-gpu-"))
    rng = np.random.default_rng(0)
    model = work / "cnn.onnx"
    onnx.save(cnn_model(rng), model)
    row = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    inputs = {1: row, 32: np.repeat(row, 32, axis=0)}
    cpu = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = {n: cpu.run(None, {"input": x})[0] for n, x in inputs.items()}

    session = cuda_session(model)
    results: list[dict[str, Any]] = []

    def add(system: str, encoding: str, concurrency: Any, rows: int, numbers: dict[str, Any]) -> None:
        numbers.pop("requests", None)
        results.append(
            {"model": "cnn", "system": system, "encoding": encoding, "concurrency": concurrency, "rows": rows}
            | numbers
            | {"rows_s": numbers["req_s"] * rows}
        )
        print(json.dumps(results[-1]), file=sys.stderr)

    for rows, x in inputs.items():
        add(f"raw onnxruntime CUDA, batch {rows}", "numpy", "-", rows, raw(session, x))
    del session

    root = work / "models"
    write_repository(root, model)
    check_refusal(root, work)

    lua = work / "post.lua"
    lua.write_text(WRK_SCRIPT)
    port = free_port()
    env = {"MLGIT_SERVING_MODEL_REPOSITORY": str(root), "MLGIT_SERVING_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "mlgit_serving", "--port", str(port), "--host", "127.0.0.1"]
    server = Server(command, f"http://127.0.0.1:{port}/v2/health/ready", env=env, log=work / "serve.log")
    try:
        for name, rows, encodings, concurrencies in (
            ("cnn_batched", 1, ("JSON", "binary"), (1, 32)),
            ("cnn", 32, ("binary",), (1, 8)),
        ):
            url = f"http://127.0.0.1:{port}/v2/models/{name}/infer"
            for encoding, body in oip_bodies(work, f"cnn{rows}", inputs[rows]).items():
                if encoding not in encodings:
                    continue
                if (problem := check_answer(url, body, expected[rows], **TOLERANCE)) is not None:
                    fail(problem)
                state = "on" if name.endswith("batched") else "off"
                for concurrency in concurrencies:
                    numbers = server.measure(url, *body, concurrency, DURATION, lua)
                    add(f"mlgit-serving CUDA, batching {state}", encoding, concurrency, rows, numbers)
    finally:
        server.stop()
    gpu = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
    print(f"**Machine**: {gpu}; {os.cpu_count()} cores; onnxruntime-gpu {ort.__version__}; server on core 0\n")
    print("\n".join(table([{**r, "kind": "gpu"} for r in results])))


if __name__ == "__main__":
    main()
