"""The peer servers the serving benchmark runs beside mlgit-serving, and how the harness starts each one.

Every peer is one small program in this folder, run with the Python of its own venv under
$BENCH_PEERS/<key> (bench/serving/setup_peers.sh makes them), serving both benchmark models (mlp.onnx and
cnn.onnx from --models) with onnxruntime on one intra-op thread. The harness (bench.py, in the project's
venv) only imports this file: the peers' own imports live in their programs.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    """A port nothing listens on now (other benchmarks or servers may share this machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Launch:
    """One started configuration of a peer: the command line and where it answers."""

    command: list[str]
    port: int
    ready_url: str
    grpc_port: int | None = None


@dataclass(frozen=True)
class Peer:
    key: str  # its venv's folder under $BENCH_PEERS and its program, peers/<key>_peer.py
    label: str  # the "system" column of the results table
    api: Literal["v2", "bentoml"]  # the request body: V2 JSON/binary, or BentoML's own {"input": [...]}
    encodings: tuple[str, ...]  # "JSON", and "binary" where its REST front end has the binary tensor extension
    batching: tuple[bool, ...]  # the batching configurations measured (off, on)
    ready_path: str = "/v2/health/ready"
    extra_ports: tuple[str, ...] = ()  # flags naming further ports the peer needs (gRPC, metrics)
    grpc: bool = False  # serves V2 gRPC on --grpc-port (gRPC cells run against it)
    workdir: bool = False  # takes --workdir for files it writes
    notes: str = field(default="", compare=False)

    def program(self) -> Path:
        return HERE / f"{self.key}_peer.py"

    def launch(self, venv_root: Path, models: Path, work: Path, batched: bool) -> Launch:
        python = venv_root / self.key / "bin" / "python"
        port = free_port()
        command = [str(python), str(self.program()), "--port", str(port), "--models", str(models)]
        ports = {flag: free_port() for flag in self.extra_ports}
        for flag, number in ports.items():
            command += [flag, str(number)]
        if self.workdir:
            command += ["--workdir", str(work / f"{self.key}-{'batched' if batched else 'direct'}")]
        if batched:
            command.append("--batched")
        grpc_port = ports["--grpc-port"] if self.grpc else None
        return Launch(command, port, f"http://127.0.0.1:{port}{self.ready_path}", grpc_port)

    def infer_url(self, port: int, model: str) -> str:
        if self.api == "bentoml":
            return f"http://127.0.0.1:{port}/{model}"
        return f"http://127.0.0.1:{port}/v2/models/{model}/infer"


PEERS = (
    Peer(
        "mlserver",
        "MLServer 1.7.1",
        "v2",
        ("JSON",),
        (False, True),
        extra_ports=("--grpc-port", "--metrics-port"),
        grpc=True,
        workdir=True,
        notes="custom runtime of its docs (mlserver_runtime.py), one process; adaptive batching 32 / 2 ms",
    ),
    Peer(
        "kserve",
        "KServe 0.21 model server",
        "v2",
        ("JSON", "binary"),
        (False,),
        notes="kserve.Model running onnxruntime; no batching inside the model server (KServe batches in an "
        "agent sidecar); binds 0.0.0.0",
    ),
    Peer(
        "bentoml",
        "BentoML 1.4.40",
        "bentoml",
        ("JSON",),
        (True,),
        ready_path="/readyz",
        notes="its own API, POST /<model> {'input': [[...]]}; adaptive batching 32, max_latency_ms 10000",
    ),
    Peer(
        "fastapi",
        "plain FastAPI + onnxruntime",
        "v2",
        ("JSON",),
        (False,),
        notes="one endpoint, Request.json() and numpy, no batching: the no-framework baseline",
    ),
    Peer(
        "pytriton",
        "Triton front end (PyTriton 0.7.0)",
        "v2",
        ("JSON", "binary"),
        (True,),
        # Triton answers /v2/health/ready before PyTriton has bound the models; mlp is bound last.
        ready_path="/v2/models/mlp/ready",
        extra_ports=("--grpc-port", "--metrics-port"),
        grpc=True,
        notes="Triton's C++ HTTP/gRPC front end, onnxruntime in its Python callable; dynamic batching 32 / 2 ms",
    ),
)
