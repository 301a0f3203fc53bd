"""Serving benchmark: raw onnxruntime, mlgit-serving (REST and gRPC) and every peer server in one run.

Peers (bench/serving/peers/, each in its own venv made by bench/serving/setup_peers.sh): MLServer, KServe's
model server, BentoML, a plain FastAPI server and Triton's C++ front end (PyTriton). Models: an MLP and a
CNN (models.py). Every server and raw onnxruntime run on core 0 with one intra-op thread; the load
generator (wrk for HTTP, ghz for gRPC) on core 1. Each server's answers are compared with raw
onnxruntime's before its cells count.

    bash bench/serving/setup_peers.sh                  # once: peer venvs and ghz under /tmp/bench-peers
    python bench/serving/bench.py --duration 3         # about 6 minutes; markdown on stdout

A peer whose venv is missing, that does not start, or that answers wrongly is left out and named under
the table; the gRPC cells run when the runtime has MLGIT_SERVING_GRPC_PORT and ghz is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bodies import (
    Body,
    bentoml_body,
    check_answer,
    check_grpc_answer,
    grpc_protoset,
    grpc_request,
    oip_bodies,
)
from load import LOAD_CORE, SERVER_CORE, WRK_SCRIPT, Server, run_ghz, run_wrk
from models import cnn_model, mlp_model
from peers import PEERS, Peer, free_port
from report import Result, render

CONCURRENCY = (1, 32)
BIG_CONCURRENCY = (1, 8)  # for 32-row requests: 8 x 32 rows already fill every batch
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
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": float(np.percentile(times, 99)) * 1000,
        "errors": 0,
    }


def write_ours(root: Path, models: dict[str, Path]) -> None:
    """An mlgit-serving model repository with each model twice: `<name>` unbatched, `<name>_batched`."""
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


def runtime_has_grpc() -> bool:
    from mlgit_serving.settings import ServerSettings

    return "grpc_port" in ServerSettings.model_fields


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    return (
        f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}, onnxruntime {ort.__version__}, wrk {wrk}; servers on core "
        f"{SERVER_CORE}, load generator on core {LOAD_CORE}"
    )


class Bench:
    """The run's shared inputs (models, bodies, expected outputs) and its growing list of results."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        rng = np.random.default_rng(0)
        self.models = {"mlp": work / "mlp.onnx", "cnn": work / "cnn.onnx"}
        onnx.save(mlp_model(rng), self.models["mlp"])
        onnx.save(cnn_model(rng), self.models["cnn"])
        one = {"mlp": rng.standard_normal((1, 64)), "cnn": rng.standard_normal((1, 3, 64, 64))}
        self.inputs = {(m, n): np.repeat(x, n, axis=0).astype(np.float32) for m, x in one.items() for n in (1, 32)}
        self.expected = {}
        for (model, n), x in self.inputs.items():
            session = ort.InferenceSession(str(self.models[model]), providers=["CPUExecutionProvider"])
            self.expected[(model, n)] = session.run(None, {"input": x})[0]
        self.lua = work / "post.lua"
        self.lua.write_text(WRK_SCRIPT)
        self.ghz = args.peers_root / "bin" / "ghz"
        self.protoset = grpc_protoset(work) if self.ghz.exists() else None
        self.results: list[Result] = []
        self.notes: list[str] = []

    def add(
        self, model: str, system: str, kind: str, encoding: str, concurrency: Any, rows: int, numbers: dict
    ) -> None:
        numbers.pop("requests", None)
        result = {"model": model, "system": system, "kind": kind, "encoding": encoding, "concurrency": concurrency}
        result |= {"rows": rows, **numbers, "rows_s": numbers["req_s"] * rows}
        self.results.append(result)
        print(json.dumps(result), file=sys.stderr)

    def cell(self, server: Server, load: Any, model: str, system: str, kind: str, *where: Any) -> None:
        """Measure one cell (`load` is run_wrk's or run_ghz's arguments bound); a failed one becomes a note."""
        encoding, concurrency, rows = where
        try:
            numbers = server.charge(load)
        except RuntimeError as exc:
            self.notes.append(f"{system}, {model} {encoding} conc. {concurrency}: cell failed: {exc}")
            return
        self.add(model, system, kind, encoding, concurrency, rows, numbers)

    def bodies(self, api: str, model: str, rows: int) -> dict[str, Body]:
        x = self.inputs[(model, rows)]
        name = f"{model}{rows}"
        return bentoml_body(self.work, name, x) if api == "bentoml" else oip_bodies(self.work, name, x)

    def http_cells(
        self, server: Server, system: str, kind: str, urls: dict[str, str], api: str, encodings: tuple[str, ...]
    ) -> bool:
        """Every model x encoding x concurrency (plus 32-row CNN binary), after every answer was checked
        against raw onnxruntime's; False (and a note) when one differs."""
        plan = [
            (model, url, encoding, body, rows)
            for model, url in urls.items()
            for rows in ((1, 32) if "binary" in encodings else (1,))
            for encoding, body in self.bodies(api, model, rows).items()
            if encoding in encodings and (rows == 1 or (model, encoding) == ("cnn", "binary"))
        ]
        for model, url, _, body, rows in plan:
            if (problem := check_answer(url, body, self.expected[(model, rows)])) is not None:
                self.notes.append(f"{system}: not counted: {problem}")
                return False
        for model, url, encoding, body, rows in plan:
            for concurrency in CONCURRENCY if rows == 1 else BIG_CONCURRENCY:
                load = partial(run_wrk, url, *body, concurrency, self.args.duration, self.lua)
                self.cell(server, load, model, system, kind, encoding, concurrency, rows)
        return True

    def grpc_cells(self, server: Server, system: str, kind: str, target: str, names: dict[str, str]) -> None:
        """The same over V2 gRPC (raw tensors), driven by ghz."""
        plan = [(model, name, rows) for model, name in names.items() for rows in ((1, 32) if model == "cnn" else (1,))]
        for model, name, rows in plan:
            x, expected = self.inputs[(model, rows)], self.expected[(model, rows)]
            if (problem := check_grpc_answer(target, name, x, expected)) is not None:
                self.notes.append(f"{system}: not counted: {problem}")
                return
        for model, name, rows in plan:
            data = grpc_request(self.work, name, self.inputs[(model, rows)])
            for concurrency in CONCURRENCY if rows == 1 else BIG_CONCURRENCY:
                load = partial(run_ghz, self.ghz, target, self.protoset, data, concurrency, self.args.duration)
                self.cell(server, load, model, system, kind, "binary", concurrency, rows)

    def raw_and_ceiling(self) -> None:
        for model in self.models:
            for batch in (1, 32):
                numbers = raw_onnxruntime(self.models[model], self.inputs[(model, 1)], batch, self.args.duration)
                self.add(model, f"raw onnxruntime, batch {batch}", "raw", "numpy", "-", batch, numbers)
        port = free_port()
        trivial = Server([sys.executable, "-c", TRIVIAL_SERVER, str(port)], f"http://127.0.0.1:{port}/")
        body = self.bodies("v2", "mlp", 1)["JSON"]
        try:
            for concurrency in CONCURRENCY:
                numbers = trivial.measure(f"http://127.0.0.1:{port}/", *body, concurrency, self.args.duration, self.lua)
                self.add("-", "wrk ceiling: bare asyncio endpoint", "ceiling", "JSON", concurrency, 1, numbers)
        finally:
            trivial.stop()

    def mlgit(self) -> list[float]:
        root = self.work / "ours"
        write_ours(root, self.models)
        port, grpc_port = free_port(), free_port()
        grpc = runtime_has_grpc()
        env = {"MLGIT_SERVING_MODEL_REPOSITORY": str(root), "MLGIT_SERVING_LOG_LEVEL": "warning"}
        env |= {"MLGIT_SERVING_WORKERS": "1"} | ({"MLGIT_SERVING_GRPC_PORT": str(grpc_port)} if grpc else {})
        command = [sys.executable, "-m", "mlgit_serving", "--port", str(port), "--host", "127.0.0.1"]
        ready = f"http://127.0.0.1:{port}/v2/health/ready"
        cold_starts = []
        for _ in range(3):
            probe = Server(command, ready, env=env)
            cold_starts.append(probe.cold_start_s)
            probe.stop()
        ours = Server(command, ready, env=env, log=self.work / "mlgit.log")
        try:
            for concurrency in CONCURRENCY:
                url = f"http://127.0.0.1:{port}/v2/health/live"
                numbers = ours.measure(url, None, "", None, concurrency, self.args.duration, None)
                self.add(
                    "-", "mlgit-serving GET /v2/health/live (framework floor)", "ceiling", "-", concurrency, 1, numbers
                )
            for batched in (False, True):
                suffix, state = ("_batched", "on") if batched else ("", "off")
                urls = {m: f"http://127.0.0.1:{port}/v2/models/{m}{suffix}/infer" for m in self.models}
                self.http_cells(ours, f"mlgit-serving REST, batching {state}", "mlgit", urls, "v2", ("JSON", "binary"))
                if grpc and self.protoset is not None:
                    names = {m: f"{m}{suffix}" for m in self.models}
                    self.grpc_cells(
                        ours, f"mlgit-serving gRPC, batching {state}", "mlgit", f"127.0.0.1:{grpc_port}", names
                    )
        finally:
            ours.stop()
        if not grpc:
            self.notes.append("mlgit-serving gRPC: not measured: this runtime has no MLGIT_SERVING_GRPC_PORT")
        elif self.protoset is None:
            self.notes.append(f"gRPC cells: not measured: {self.ghz} missing (bash bench/serving/setup_peers.sh ghz)")
        return cold_starts

    def peer(self, peer: Peer) -> None:
        if not (self.args.peers_root / peer.key / "bin" / "python").exists():
            self.notes.append(f"{peer.label}: skipped: no venv (bash bench/serving/setup_peers.sh {peer.key})")
            return
        for batched in peer.batching:
            system = f"{peer.label}, batching {'on' if batched else 'off'}"
            launch = peer.launch(self.args.peers_root, self.work, self.work, batched)
            try:
                server = Server(launch.command, launch.ready_url, log=self.work / f"{peer.key}-{batched}.log")
            except RuntimeError as exc:
                self.notes.append(f"{system}: did not start: {exc}")
                continue
            try:
                urls = {m: peer.infer_url(launch.port, m) for m in self.models}
                right = self.http_cells(server, system, "peer", urls, peer.api, peer.encodings)
                if right and launch.grpc_port and self.protoset is not None:
                    names = {m: m for m in self.models}
                    self.grpc_cells(server, f"{system}, gRPC", "peer", f"127.0.0.1:{launch.grpc_port}", names)
            finally:
                server.stop()
        if peer.notes:
            self.notes.append(f"{peer.label}: {peer.notes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per cell")
    parser.add_argument("--peers-root", type=Path, default=Path(os.environ.get("BENCH_PEERS", "/tmp/bench-peers")))
    parser.add_argument("--peers", nargs="*", default=[p.key for p in PEERS], help="peers to run (default: all)")
    args = parser.parse_args()
    unknown = set(args.peers) - {p.key for p in PEERS}
    if unknown:
        parser.error(f"--peers: unknown {sorted(unknown)}; known: {[p.key for p in PEERS]}")
    work = Path(tempfile.mkdtemp(prefix="mlgit-bench-"))
    started = time.perf_counter()
    try:
        bench = Bench(args, work)
        bench.raw_and_ceiling()
        cold_starts = bench.mlgit()
        for peer in PEERS:
            if peer.key in args.peers:
                bench.peer(peer)
        bench.notes.append(f"whole run: {time.perf_counter() - started:.0f} s, {args.duration} s per cell")
        print(render(bench.results, cold_starts, bench.notes, machine()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
