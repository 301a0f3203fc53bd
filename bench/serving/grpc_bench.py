"""gRPC ModelInfer against REST with binary tensors, on one mlgit-serving process: server CPU per request.

The CNN of models.py ([N,3,64,64] FP32), batched (max_batch_size 32), with 1-row and 32-row requests, and
each protocol's floor (the liveness call: the framework's cost per request without any inference). The
server runs on core 0 with one intra-op thread (load.Server); the clients, asyncio loops sending prepared
requests on persistent connections (one HTTP/1.1 connection, or one HTTP/2 stream, per request in flight),
on core 1. Cells alternate (REST, gRPC, REST, gRPC, ...) and each figure is the median over the rounds:
on a shared machine req/s moves with other load, server CPU microseconds per request far less.

    python bench/serving/grpc_bench.py --duration 3 --rounds 3     # markdown table on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnx
from tritonclient.grpc import service_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import LOAD_CORE, Server
from models import cnn_model
from peers import free_port

MODEL = "cnn"
SERVICE = "/inference.GRPCInferenceService/"


def write_repository(root: Path) -> None:
    directory = root / MODEL
    (directory / "1").mkdir(parents=True)
    onnx.save(cnn_model(np.random.default_rng(0)), directory / "1" / "model.onnx")
    settings = {"threads": {"intra_op": 1, "inter_op": 1}, "batching": {"enabled": True, "max_batch_size": 32}}
    (directory / "model-settings.json").write_text(json.dumps(settings))


def rest_request(port: int, x: np.ndarray) -> bytes:
    """A complete HTTP/1.1 request: JSON header then the tensor, binary output asked for."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(x.shape),
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    body = header + x.tobytes()
    head = (
        f"POST /v2/models/{MODEL}/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nInference-Header-Content-Length: {len(header)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def grpc_request(x: np.ndarray) -> bytes:
    tensor = service_pb2.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    request = service_pb2.ModelInferRequest(model_name=MODEL, inputs=[tensor], raw_input_contents=[x.tobytes()])
    return request.SerializeToString()


def rest_live_request(port: int) -> bytes:
    return f"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def rest_worker(port: int, request: bytes, stop: float, count: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
        body = await reader.readexactly(length)
        assert head.startswith(b"HTTP/1.1 200"), head[:200] + body[:300]
        count[0] += 1
    writer.close()


async def grpc_worker(call: Any, request: bytes, stop: float, count: list[int]) -> None:
    while time.perf_counter() < stop:
        await call(request)
        count[0] += 1


async def drive(make: Callable[[float, list[int]], Awaitable[None]], concurrency: int, duration: float) -> int:
    count = [0]
    stop = time.perf_counter() + duration
    await asyncio.gather(*(make(stop, count) for _ in range(concurrency)))
    return count[0]


def measure(
    server: Server, ports: tuple[int, int], protocol: str, x: np.ndarray | None, concurrency: int, duration: float
) -> dict[str, float]:
    """One cell: `concurrency` requests in flight for `duration` seconds over `protocol`: inference of `x`,
    or (x None) the liveness call, each protocol's floor."""
    http_port, grpc_port = ports

    async def run() -> int:
        if protocol == "rest":
            request = rest_request(http_port, x) if x is not None else rest_live_request(http_port)
            return await drive(lambda stop, count: rest_worker(http_port, request, stop, count), concurrency, duration)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            # bytes in, bytes out: no client-side (de)serialisation
            call = channel.unary_unary(SERVICE + ("ModelInfer" if x is not None else "ServerLive"))
            request = grpc_request(x) if x is not None else b""
            await call(request)  # connect before the clock starts
            return await drive(lambda stop, count: grpc_worker(call, request, stop, count), concurrency, duration)

    before, started = server.cpu_seconds(), time.perf_counter()
    requests = asyncio.run(run())
    elapsed = time.perf_counter() - started
    cpu_us = (server.cpu_seconds() - before) / max(requests, 1) * 1e6
    rows = 0 if x is None else x.shape[0]
    return {"req_s": requests / elapsed, "rows_s": requests * rows / elapsed, "cpu_us": cpu_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir) / "models"
        write_repository(root)
        http_port, grpc_port = free_port(), free_port()
        env = {
            "MLGIT_SERVING_MODEL_REPOSITORY": str(root),
            "MLGIT_SERVING_HOST": "127.0.0.1",
            "MLGIT_SERVING_PORT": str(http_port),
            "MLGIT_SERVING_GRPC_PORT": str(grpc_port),
            "MLGIT_SERVING_LOG_LEVEL": "warning",
        }
        server = Server(
            [sys.executable, "-m", "mlgit_serving"],
            f"http://127.0.0.1:{http_port}/v2/health/ready",
            env=env,
            log=Path(workdir) / "server.log",
        )
        rng = np.random.default_rng(1)
        cells: dict[tuple[int, str], list[dict[str, float]]] = {}
        try:
            for rows in (0, 1, 32):  # 0: the liveness call
                x = rng.standard_normal((rows, 3, 64, 64)).astype(np.float32) if rows else None
                for protocol in ("rest", "grpc"):  # warm-up, not counted
                    measure(server, (http_port, grpc_port), protocol, x, args.concurrency, 0.5)
                for _ in range(args.rounds):
                    for protocol in ("rest", "grpc"):
                        cells.setdefault((rows, protocol), []).append(
                            measure(server, (http_port, grpc_port), protocol, x, args.concurrency, args.duration)
                        )
        finally:
            server.stop()
    print(f"| CNN rows/request | protocol | conc. | req/s | rows/s | server CPU us/req (median of {args.rounds}) |")
    print("|---|---|---|---|---|---|")
    for (rows, protocol), runs in cells.items():
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        name = "REST binary" if protocol == "rest" else "gRPC raw"
        if not rows:
            name = "REST GET /v2/health/live" if protocol == "rest" else "gRPC ServerLive"
        print(
            f"| {rows or '-'} | {name} | {args.concurrency} | {median['req_s']:.0f} | {median['rows_s']:.0f} "
            f"| {median['cpu_us']:.0f} |"
        )


if __name__ == "__main__":
    main()
