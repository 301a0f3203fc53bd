"""What each monitoring feature costs on the inference path: the MLP of bench/serving/bench.py ([N,64] -> 10,
JSON body) served by mlgit-serving with every feature off, then each one on alone:

- drift: a reference profile of the 64 features (10 bins each, as `mlgit render` profiles them) in
  model-settings.json;
- payload: payload logging of every request (sample rate 1) to a local HTTP sink answering 200;
- tracing: OpenTelemetry spans of every request to a local OTLP/HTTP receiver answering 200.

A feature whose setting this runtime does not know yet is reported as "not available". wrk posts the body;
req/s, latency and the server's CPU time per request (the figure least moved by other load), server on
core 0 and wrk on core 1 as in bench.py.

    python bench/monitoring/cost.py [--duration 5] [--rounds 2] [--connections 8] >> bench/monitoring/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serving"))
from bodies import check_ok, oip_bodies
from load import Server
from models import mlp_model
from peers import free_port

from mlgit.drift_profile import profile_input
from mlgit.model_settings import DriftSettings, TensorSpec
from mlgit_serving.settings import ServerSettings

LUA = """
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
"""
FEATURES, BINS = 64, 10


class Sink:
    """A local HTTP server that answers every POST 200 and counts them (payload events, OTLP spans)."""

    def __init__(self) -> None:
        self.posts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"


def drift_profile(reference: np.ndarray) -> dict[str, Any]:
    """model-settings.json's `drift`, profiled as `mlgit render` does it (mlgit.drift_profile)."""
    spec = TensorSpec(name="input", datatype="FP32", shape=[-1, FEATURES])
    return DriftSettings(inputs=[profile_input(spec, reference, BINS)]).model_dump(mode="json")


def write_model(root: Path, model_path: Path, drift: dict[str, Any] | None) -> None:
    directory = root / "mlp"
    (directory / "1").mkdir(parents=True)
    (directory / "1" / "model.onnx").write_bytes(model_path.read_bytes())
    settings: dict[str, Any] = {"threads": {"intra_op": 1, "inter_op": 1}}
    if drift is not None:
        settings["drift"] = drift
    (directory / "model-settings.json").write_text(json.dumps(settings))


def known(setting: str) -> bool:
    return setting in ServerSettings.model_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    sink = Sink()
    rng = np.random.default_rng(1)
    reference = rng.random((5000, FEATURES), dtype=np.float32)
    # mode -> (available, server environment, drift profile or None)
    modes: dict[str, tuple[bool, dict[str, str], dict[str, Any] | None]] = {
        "off": (True, {}, None),
        "drift": (True, {}, drift_profile(reference)),
        "payload (rate 1)": (
            known("payload_log_url"),
            {"MLGIT_SERVING_PAYLOAD_LOG_URL": sink.url("/events"), "MLGIT_SERVING_PAYLOAD_LOG_SAMPLE_RATE": "1"},
            None,
        ),
        "tracing (rate 1)": (
            known("tracing_endpoint"),
            {"MLGIT_SERVING_TRACING_ENDPOINT": sink.url("/v1/traces"), "MLGIT_SERVING_TRACING_SAMPLE_RATE": "1"},
            None,
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_path = work / "mlp.onnx"
        onnx.save(mlp_model(np.random.default_rng(0)), model_path)
        body_path, content_type, _ = oip_bodies(work, "mlp", rng.random((1, FEATURES), dtype=np.float32))["JSON"]
        lua = work / "post.lua"
        lua.write_text(LUA)
        results: dict[str, list[dict[str, Any]]] = {mode: [] for mode, (ok, _, _) in modes.items() if ok}
        for round_ in range(args.rounds):
            for index, (mode, (available, env, drift)) in enumerate(modes.items()):
                if available:
                    repo = work / f"repo-{round_}-{index}"
                    write_model(repo, model_path, drift)
                    results[mode].append(measure(repo, env, body_path, content_type, lua, args))
        print(report(results, [mode for mode, (ok, _, _) in modes.items() if not ok], sink.posts))


def measure(
    repo: Path, env: dict[str, str], body_path: Path, content_type: str, lua: Path, args: argparse.Namespace
) -> dict[str, Any]:
    port = free_port()
    server = Server(
        [sys.executable, "-m", "mlgit_serving", "--model-repository", str(repo), "--port", str(port)],
        f"http://127.0.0.1:{port}/v2/health/ready",
        env=env,
    )
    url = f"http://127.0.0.1:{port}/v2/models/mlp/infer"
    try:
        check_ok(url, (body_path, content_type, None))
        return server.measure(url, body_path, content_type, None, args.connections, args.duration, lua)
    finally:
        server.stop()


def report(results: dict[str, list[dict[str, Any]]], missing: list[str], sink_posts: int) -> str:
    def joined(rounds: list[dict[str, Any]], key: str, fmt: Callable[[float], str]) -> str:
        return " / ".join(fmt(r[key]) for r in rounds)

    lines = [
        "| monitoring | req/s (each round) | vs off (best round) | p50 ms | p99 ms | errors | server CPU us/req |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    best_off = max(r["req_s"] for r in results["off"])
    for mode, rounds in results.items():
        best = max(r["req_s"] for r in rounds)
        lines.append(
            f"| {mode} | {joined(rounds, 'req_s', '{:.0f}'.format)} | {(best / best_off - 1) * 100:+.1f}% "
            f"| {min(r['p50_ms'] for r in rounds):.3f} | {min(r['p99_ms'] for r in rounds):.2f} "
            f"| {sum(r['errors'] for r in rounds)} | {joined(rounds, 'cpu_us_per_req', '{:.0f}'.format)} |"
        )
    lines += [f"| {mode} | not available in this runtime yet | | | | | |" for mode in missing]
    lines.append(f"\nThe local sink received {sink_posts} POSTs (payload batches and OTLP exports).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
