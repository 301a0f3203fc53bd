"""The per-request floor of mlgit-serving's REST path: variants of the server compared cell by cell.

Each variant is a name and a PYTHONPATH that puts a copy of `mlgit_serving` first (empty: the installed
one), optionally with extra MLGIT_SERVING_* settings. Variants run interleaved (A, B, A, B, ...) on the
server core with wrk on the other, and the table reports the median of the rounds: req/s, and the
server's CPU microseconds per request, which load elsewhere on the machine moves least.

    cp -r serving_runtime/mlgit_serving /tmp/before/        # the code to compare against
    python bench/serving/floor/alternatives.py --variant before=/tmp/before --variant after= --rounds 2
    python bench/serving/floor/alternatives.py --variant w1=:WORKERS=1 --variant w2=:WORKERS=2 --cores 0,1

A variant is NAME=PYTHONPATH[:SETTING=VALUE,...]. --profile DIR also records a py-spy profile of each
cell (collapsed stacks) of the first variant's first round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bodies import oip_bodies  # noqa: E402
from load import LOAD_CORE, WRK_SCRIPT, Server  # noqa: E402
from models import cnn_model, mlp_model  # noqa: E402

# (cell name, model directory, body name, encoding, connections); GET when the body is None.
CELLS = [
    ("GET /v2/health/live", None, None, None, 32),
    ("MLP JSON, batching, 1 row", "mlp_batched", "mlp", "JSON", 32),
    ("CNN binary, batching, 1 row", "cnn_batched", "cnn", "binary", 32),
    ("CNN binary, 32 rows", "cnn", "cnn32", "binary", 8),
    ("CNN JSON, batching, 1 row", "cnn_batched", "cnn", "JSON", 32),
]


def write_repository(root: Path, work: Path) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(0)
    models = {"mlp": mlp_model(rng), "cnn": cnn_model(rng)}
    for name, model in models.items():
        for batched in (False, True):
            directory = root / (f"{name}_batched" if batched else name) / "1"
            directory.mkdir(parents=True)
            (directory / "model.onnx").write_bytes(model.SerializeToString())
            settings = {
                "threads": {"intra_op": 1, "inter_op": 1},
                "batching": {"enabled": batched, "max_batch_size": 32, "max_delay_ms": 2.0},
            }
            (directory.parent / "model-settings.json").write_text(json.dumps(settings))
    rows = {"mlp": rng.standard_normal((1, 64)), "cnn": rng.standard_normal((1, 3, 64, 64))}
    rows["cnn32"] = np.repeat(rows["cnn"], 32, axis=0)
    return {name: oip_bodies(work, name, row.astype(np.float32)) for name, row in rows.items()}


def parse_variant(text: str) -> tuple[str, str, dict[str, str]]:
    name, _, rest = text.partition("=")
    path, _, settings = rest.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    return name, path, {f"MLGIT_SERVING_{k.upper()}": v for k, v in env.items()}


def start(path: str, settings: dict[str, str], repository: Path, port: int, cores: str) -> Server:
    env = {**settings, "MLGIT_SERVING_MODEL_REPOSITORY": str(repository), "MLGIT_SERVING_PORT": str(port)}
    env["MLGIT_SERVING_HOST"] = "127.0.0.1"
    if path:
        env["PYTHONPATH"] = path
    command = ["taskset", "-c", cores, sys.executable, "-m", "mlgit_serving"]
    return Server(command, f"http://127.0.0.1:{port}/v2/health/ready", env=env)


def measure(server: Server, port: int, cell: tuple[Any, ...], bodies: dict[str, Any], lua: Path, duration: int) -> dict:
    _, model, body_name, encoding, connections = cell
    if model is None:
        url = f"http://127.0.0.1:{port}/v2/health/live"
        return server.measure(url, None, "", None, connections, duration, None)
    path, content_type, header_length = bodies[body_name][encoding]
    url = f"http://127.0.0.1:{port}/v2/models/{model}/infer"
    return server.measure(url, path, content_type, header_length, connections, duration, lua)


def profile(server: Server, out: Path, run: Any) -> None:
    spy = shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy"
    env = {**os.environ, "PYTHONPATH": "/tmp/pyspy"}
    recorder = subprocess.Popen(
        [spy, "record", "--format", "raw", "--rate", "500", "--native", "-o", str(out), "--pid",
         str(server.process.pid), "--subprocesses"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        run()
    finally:
        recorder.send_signal(2)
        recorder.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="NAME=PYTHONPATH[:SETTING=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--cells", default="", help="comma-separated cell numbers (from 0); default: all")
    parser.add_argument("--cores", default="0", help="the server's cores (taskset -c); wrk runs on " + LOAD_CORE)
    parser.add_argument("--profile", type=Path, help="write py-spy collapsed stacks of each cell here")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    cells = [CELLS[int(i)] for i in args.cells.split(",")] if args.cells else CELLS
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        work = Path(tmp)
        bodies = write_repository(work / "models", work)
        lua = work / "post.lua"
        lua.write_text(WRK_SCRIPT)
        for round_ in range(args.rounds):
            for name, path, settings in variants:
                port = 18600 + round_
                server = start(path, settings, work / "models", port, args.cores)
                try:
                    for cell in cells:
                        measure(server, port, cell, bodies, lua, 1)  # warm-up: allocator, batch sizes
                        if args.profile is not None and round_ == 0 and name == variants[0][0]:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            out = args.profile / f"{name}-{CELLS.index(cell)}.txt"
                            profile(server, out, lambda: measure(server, port, cell, bodies, lua, args.duration))  # noqa: B023
                        numbers = measure(server, port, cell, bodies, lua, args.duration)
                        results.setdefault((cell[0], name), []).append(numbers)
                        req_s, us = numbers["req_s"], numbers["cpu_us_per_req"]
                        print(f"{name:>10} {cell[0]:<32} {req_s:>9.0f} req/s {us:>7.0f} us/req", flush=True)
                finally:
                    server.stop()
    print("\n| cell | variant | req/s | server CPU us/req | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for cell in cells:
        for name, _, _ in variants:
            runs = results[(cell[0], name)]
            median = {k: statistics.median(r[k] for r in runs) for k in ("req_s", "cpu_us_per_req", "p50_ms", "p99_ms")}
            errors = sum(r["errors"] for r in runs)
            print(f"| {cell[0]} | {name} | {median['req_s']:.0f} | {median['cpu_us_per_req']:.0f} | "
                  f"{median['p50_ms']:.2f} | {median['p99_ms']:.2f} | {errors} |")  # fmt: skip


if __name__ == "__main__":
    main()
