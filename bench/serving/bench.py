"""Serving benchmark: raw onnxruntime vs mlgit-serving vs MLServer, side by side in one run.

Models: an MLP ([N,64] -> 512 -> 512 -> 10) and a CNN ([N,3,64,64], three stride-2 3x3 convolutions,
global average pooling, 10 outputs), built with onnx.helper from seeded random weights. Every server
and raw onnxruntime are pinned to core 0 with one intra-op thread; wrk (the load generator) to core 1.

    python bench/serving/bench.py [--duration 3] [--mlserver-venv /tmp/bench-peers/mlserver]

The MLServer venv needs `mlserver==1.7.1 uvloop==0.21.0 onnxruntime`; without it MLServer is skipped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import socket
import statistics
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
from onnx import TensorProto, helper, numpy_helper

SERVER_CORE, LOAD_CORE = "0", "1"
HERE = Path(__file__).resolve().parent
WRK_SCRIPT = """
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local header_length = os.getenv("BENCH_HEADER_LENGTH")
if header_length ~= nil and header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
"""
TRIVIAL_SERVER = """
import asyncio, sys, uvloop
RESPONSE = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: application/json\\r\\n\\r\\n{}"
class Echo(asyncio.Protocol):
    def connection_made(self, transport): self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while True:
            head, sep, rest = self.buffer.partition(b"\\r\\n\\r\\n")
            if not sep: return
            length = 0
            for line in head.split(b"\\r\\n"):
                if line.lower().startswith(b"content-length:"): length = int(line.split(b":")[1])
            if len(rest) < length: return
            self.buffer = rest[length:]
            self.transport.write(RESPONSE)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
uvloop.run(main())
"""


def free_port() -> int:
    """A port nothing listens on now (other benchmarks or servers may share this machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graph_model(nodes: list[Any], inputs: list[Any], outputs: list[Any], weights: list[Any]) -> onnx.ModelProto:
    model = helper.make_model(
        helper.make_graph(nodes, "bench", inputs, outputs, weights), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def mlp_model(rng: np.random.Generator) -> onnx.ModelProto:
    sizes = [64, 512, 512, 10]
    nodes, weights, current = [], [], "input"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weights += [
            numpy_helper.from_array(
                (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32), f"W{i}"
            ),
            numpy_helper.from_array(np.zeros(fan_out, dtype=np.float32), f"B{i}"),
        ]
        out = "output" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [out if out == "output" else out + "_lin"]))
        if out != "output":
            nodes.append(helper.make_node("Relu", [out + "_lin"], [out]))
        current = out
    return _graph_model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        weights,
    )


def cnn_model(rng: np.random.Generator) -> onnx.ModelProto:
    channels = [3, 16, 32, 64]
    nodes, weights, current = [], [], "input"
    for i, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
        weights += [
            numpy_helper.from_array(
                (rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)).astype(np.float32), f"K{i}"
            ),
            numpy_helper.from_array(np.zeros(c_out, dtype=np.float32), f"KB{i}"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [current, f"K{i}", f"KB{i}"], [f"c{i}"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
            ),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        current = f"r{i}"
    weights += [
        numpy_helper.from_array((rng.standard_normal((64, 10)) / 8).astype(np.float32), "FW"),
        numpy_helper.from_array(np.zeros(10, dtype=np.float32), "FB"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [current], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "FW", "FB"], ["output"]),
    ]
    return _graph_model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        weights,
    )


def raw_onnxruntime(path: Path, row: np.ndarray, batch: int, duration: float) -> dict[str, Any]:
    """In-process onnxruntime on the server core: the limit a server can approach."""
    os.sched_setaffinity(0, {int(SERVER_CORE)})
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        x = np.repeat(row, batch, axis=0)
        for _ in range(20):
            session.run(None, {"input": x})
        times = []
        end = time.perf_counter() + duration
        while (start := time.perf_counter()) < end:
            session.run(None, {"input": x})
            times.append(time.perf_counter() - start)
    finally:
        os.sched_setaffinity(0, {int(SERVER_CORE), int(LOAD_CORE)})
    return {
        "req_s": len(times) / sum(times),
        "rows_s": batch * len(times) / sum(times),
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": float(np.percentile(times, 99)) * 1000,
        "errors": 0,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    url: str,
    body: Path | None,
    content_type: str,
    header_length: int | None,
    connections: int,
    duration: int,
    lua: Path | None,
) -> dict[str, Any]:
    """wrk on the load core; with a Lua script it POSTs `body`, without one it GETs."""
    env = {
        **os.environ,
        "BENCH_BODY": str(body),
        "BENCH_CONTENT_TYPE": content_type,
        "BENCH_HEADER_LENGTH": "" if header_length is None else str(header_length),
    }
    script = ["-s", str(lua)] if lua is not None else []
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            *script,
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "req_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": socket_errors + (int(non_2xx.group(1)) if non_2xx else 0),
    }


class Server:
    def __init__(
        self, command: list[str], ready_url: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with httpx.Client() as client:
            while True:
                assert self.process.poll() is None, f"{command} exited"
                try:
                    if client.get(ready_url).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.perf_counter() - self.started < 120, f"{command} never became ready"
                time.sleep(0.005)
        self.cold_start_s = time.perf_counter() - self.started

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process: unlike req/s, barely moved by other load."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def measure(self, *wrk_args: Any) -> dict[str, Any]:
        before = self.cpu_seconds()
        numbers = run_wrk(*wrk_args)
        requests = numbers["req_s"] * wrk_args[5]
        numbers["cpu_us_per_req"] = (self.cpu_seconds() - before) / max(requests, 1) * 1e6
        return numbers

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def oip_bodies(workdir: Path, name: str, row: np.ndarray) -> dict[str, tuple[Path, str, int | None]]:
    tensor = {"name": "input", "datatype": "FP32", "shape": list(row.shape)}
    json_path = workdir / f"{name}.json"
    json_path.write_text(json.dumps({"inputs": [{**tensor, "data": row.ravel().tolist()}]}))
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": row.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    binary_path = workdir / f"{name}.bin"
    binary_path.write_bytes(header + row.astype("<f4").tobytes())
    return {
        "JSON": (json_path, "application/json", None),
        "binary": (binary_path, "application/octet-stream", len(header)),
    }


def check_ok(url: str, body: tuple[Path, str, int | None]) -> None:
    path, content_type, header_length = body
    headers = {"Content-Type": content_type}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = str(header_length)
    response = httpx.post(url, content=path.read_bytes(), headers=headers, timeout=30)
    assert response.status_code == 200, response.text[:300]


def write_ours(root: Path, models: dict[str, Path]) -> None:
    for name, path in models.items():
        for batched in (False, True):
            directory = root / (f"{name}_batched" if batched else name)
            (directory / "1").mkdir(parents=True)
            shutil.copy(path, directory / "1" / "model.onnx")
            settings = {
                "threads": {"intra_op": 1, "inter_op": 1},
                "batching": {"enabled": batched, "max_batch_size": 32, "max_delay_ms": 2.0},
            }
            (directory / "model-settings.json").write_text(json.dumps(settings))


def write_mlserver(root: Path, models: dict[str, Path], batched: bool, port: int) -> None:
    root.mkdir(parents=True)
    (root / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )
    for name, path in models.items():
        directory = root / name
        directory.mkdir(parents=True)
        shutil.copy(path, directory / "model.onnx")
        shutil.copy(HERE / "mlserver_runtime.py", directory / "mlserver_runtime.py")
        settings: dict[str, Any] = {
            "name": name,
            "implementation": "mlserver_runtime.OnnxRuntimeModel",
            "parameters": {"uri": "./model.onnx"},
        }
        if batched:
            settings |= {"max_batch_size": 32, "max_batch_time": 0.002}
        (directory / "model-settings.json").write_text(json.dumps(settings))


def report(results: list[dict[str, Any]], cold_starts: list[float]) -> str:
    lines = [
        "| model | system | body | conc. | req/s | rows/s | p50 ms | p99 ms | errors | server CPU us/req |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu = f"{r['cpu_us_per_req']:.0f}" if "cpu_us_per_req" in r else ""
        rows = f"{r['rows_s']:.0f}" if "rows_s" in r else ""
        lines.append(
            f"| {r['model']} | {r['system']} | {r['encoding']} | {r['concurrency']} | {r['req_s']:.0f} | "
            f"{rows} | {r['p50_ms']:.3f} | {r['p99_ms']:.2f} | {r['errors']} | {cpu} |"
        )

    def best(model: str, prefix: str, concurrency: int | str, encoding: str | None = None) -> dict[str, Any] | None:
        cells = [
            r
            for r in results
            if r["model"] == model
            and r["system"].startswith(prefix)
            and r["concurrency"] == concurrency
            and encoding in (None, r["encoding"])
            and "rows per request" not in r["system"]
        ]
        return max(cells, key=lambda r: r["req_s"], default=None)

    verdicts = []
    raw_latency = {
        m: next(r["p50_ms"] for r in results if r["model"] == m and r["system"].endswith("batch 1"))
        for m in ("mlp", "cnn")
    }
    raw_rows = max(r["rows_s"] for r in results if r["model"] == "cnn" and r["system"].startswith("raw"))
    ours_mlp, peer_mlp = best("mlp", "mlgit", 32), best("mlp", "MLServer", 32)
    if peer_mlp:
        ratio = ours_mlp["req_s"] / peer_mlp["req_s"]
        verdicts.append(
            f"MLP conc. 32: {ours_mlp['req_s']:.0f} vs best peer {peer_mlp['req_s']:.0f} req/s = "
            f"{ratio:.1f}x (target >= 3x): {'met' if ratio >= 3 else 'MISSED'}"
        )
    ours_c1 = [r for r in results if r["model"] == "mlp" and r["system"].startswith("mlgit") and r["concurrency"] == 1]
    gap = min(r["p50_ms"] for r in ours_c1) - raw_latency["mlp"]
    worst = max(r["p50_ms"] for r in ours_c1) - raw_latency["mlp"]
    verdicts.append(
        f"MLP conc. 1 p50 over raw onnxruntime batch 1: {gap:.3f} ms best, {worst:.3f} ms worst "
        f"(target <= 1 ms): {'met' if worst <= 1 else 'MISSED'}"
    )
    binary = [
        r for r in results if r["model"] == "cnn" and r["system"].startswith("mlgit") and r["encoding"] == "binary"
    ]
    cnn_binary = max(binary, key=lambda r: r.get("rows_s", r["req_s"]))
    rows_s = cnn_binary.get("rows_s", cnn_binary["req_s"])
    share = rows_s / raw_rows
    verdicts.append(
        f"CNN binary, best configuration ({cnn_binary['system']}, conc. {cnn_binary['concurrency']}): "
        f"{rows_s:.0f} rows/s = {share:.0%} of raw onnxruntime's {raw_rows:.0f} rows/s (target >= 80%): "
        f"{'met' if share >= 0.8 else 'MISSED'}"
    )
    one_row = best("cnn", "mlgit", 32, "binary")
    verdicts.append(
        f"CNN binary, 1 row per request, conc. 32: {one_row['req_s']:.0f} rows/s = "
        f"{one_row['req_s'] / raw_rows:.0%} of raw (bounded by the per-request framework floor)"
    )
    ours_cnn_json, peer_cnn = best("cnn", "mlgit", 32, "JSON"), best("cnn", "MLServer", 32, "JSON")
    if peer_cnn:
        ratio = ours_cnn_json["req_s"] / peer_cnn["req_s"]
        verdicts.append(
            f"CNN JSON conc. 32: {ours_cnn_json['req_s']:.0f} vs best peer {peer_cnn['req_s']:.0f} "
            f"req/s = {ratio:.1f}x (target >= 2x): {'met' if ratio >= 2 else 'MISSED'}"
        )
    cold = statistics.median(cold_starts)
    verdicts.append(
        f"cold start to ready (median of {len(cold_starts)}): {cold:.2f} s (target < 2 s): "
        f"{'met' if cold < 2 else 'MISSED'}"
    )
    return "\n".join([*lines, "", *(f"- {v}" for v in verdicts)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per cell")
    parser.add_argument("--mlserver-venv", type=Path, default=Path("/tmp/bench-peers/mlserver"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="mlgit-bench-"))
    lua = work / "post.lua"
    lua.write_text(WRK_SCRIPT)
    models = {"mlp": work / "mlp.onnx", "cnn": work / "cnn.onnx"}
    onnx.save(mlp_model(rng), models["mlp"])
    onnx.save(cnn_model(rng), models["cnn"])
    rows = {
        "mlp": rng.standard_normal((1, 64)).astype(np.float32),
        "cnn": rng.standard_normal((1, 3, 64, 64)).astype(np.float32),
    }
    bodies = {name: oip_bodies(work, name, row) for name, row in rows.items()}
    results: list[dict[str, Any]] = []

    def add(model: str, system: str, encoding: str, concurrency: int | str, numbers: dict[str, Any]) -> None:
        results.append({"model": model, "system": system, "encoding": encoding, "concurrency": concurrency, **numbers})
        print(json.dumps(results[-1]), file=sys.stderr)

    for model in models:
        for batch in (1, 32):
            add(
                model,
                f"raw onnxruntime, batch {batch}",
                "numpy",
                "-",
                raw_onnxruntime(models[model], rows[model], batch, args.duration),
            )

    trivial_port, ours_port, mlserver_port = free_port(), free_port(), free_port()
    trivial = Server([sys.executable, "-c", TRIVIAL_SERVER, str(trivial_port)], f"http://127.0.0.1:{trivial_port}/")
    try:
        for concurrency in (1, 32):
            add(
                "-",
                "wrk ceiling: bare asyncio endpoint",
                "JSON",
                concurrency,
                trivial.measure(
                    f"http://127.0.0.1:{trivial_port}/",
                    bodies["mlp"]["JSON"][0],
                    "application/json",
                    None,
                    concurrency,
                    args.duration,
                    lua,
                ),
            )
    finally:
        trivial.stop()

    ours_root = work / "ours"
    write_ours(ours_root, models)
    cold_starts = []
    for _ in range(3):
        probe = Server(
            [sys.executable, "-m", "mlgit_serving", "--port", str(ours_port), "--host", "127.0.0.1"],
            f"http://127.0.0.1:{ours_port}/v2/health/ready",
            env={"MLGIT_SERVING_MODEL_REPOSITORY": str(ours_root), "MLGIT_SERVING_LOG_LEVEL": "warning"},
        )
        cold_starts.append(probe.cold_start_s)
        probe.stop()
    ours = Server(
        [sys.executable, "-m", "mlgit_serving", "--port", str(ours_port), "--host", "127.0.0.1"],
        f"http://127.0.0.1:{ours_port}/v2/health/ready",
        env={"MLGIT_SERVING_MODEL_REPOSITORY": str(ours_root), "MLGIT_SERVING_LOG_LEVEL": "warning"},
    )
    try:
        for concurrency in (1, 32):
            add(
                "-",
                "mlgit-serving GET /v2/health/live (framework floor)",
                "-",
                concurrency,
                ours.measure(
                    f"http://127.0.0.1:{ours_port}/v2/health/live", None, "", None, concurrency, args.duration, None
                ),
            )
        for model in models:
            for batched in (False, True):
                name = f"{model}_batched" if batched else model
                url = f"http://127.0.0.1:{ours_port}/v2/models/{name}/infer"
                for encoding, body in bodies[model].items():
                    check_ok(url, body)
                    for concurrency in (1, 32):
                        add(
                            model,
                            f"mlgit-serving, batching {'on' if batched else 'off'}",
                            encoding,
                            concurrency,
                            ours.measure(url, *body, concurrency, args.duration, lua),
                        )
        # Requests that carry 32 rows each: how close the server gets to raw onnxruntime when HTTP is amortised.
        cnn32 = oip_bodies(work, "cnn32", np.repeat(rows["cnn"], 32, axis=0))["binary"]
        for batched in (False, True):
            url = f"http://127.0.0.1:{ours_port}/v2/models/{'cnn_batched' if batched else 'cnn'}/infer"
            check_ok(url, cnn32)
            for concurrency in (1, 8):
                numbers = ours.measure(url, *cnn32, concurrency, args.duration, lua)
                add(
                    "cnn",
                    f"mlgit-serving, batching {'on' if batched else 'off'}, 32 rows per request",
                    "binary",
                    concurrency,
                    {**numbers, "rows_s": numbers["req_s"] * 32},
                )
    finally:
        ours.stop()

    mlserver = args.mlserver_venv / "bin" / "mlserver"
    if mlserver.exists():
        for batched in (False, True):
            root = work / f"mlserver-{batched}"
            write_mlserver(root, models, batched, mlserver_port)
            peer = Server(
                [str(mlserver), "start", str(root)], f"http://127.0.0.1:{mlserver_port}/v2/health/ready", cwd=root
            )
            try:
                for model in models:
                    url = f"http://127.0.0.1:{mlserver_port}/v2/models/{model}/infer"
                    body = bodies[model]["JSON"]
                    check_ok(url, body)
                    for concurrency in (1, 32):
                        add(
                            model,
                            f"MLServer 1.7.1, adaptive batching {'on' if batched else 'off'}",
                            "JSON",
                            concurrency,
                            peer.measure(url, *body, concurrency, args.duration, lua),
                        )
            finally:
                peer.stop()
    else:
        print(f"MLServer skipped: {mlserver} not found", file=sys.stderr)

    print(report(results, cold_starts))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
