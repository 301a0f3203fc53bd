"""Benchmark: image sizes, runtime build from scratch, model-only rebuild, cold start to ready.

Runs `mlgit build` as a user does (a fresh process each time) against the local Docker engine, on the
local base image that tests/run.sh makes (nothing can be pulled here). Target (issue 8): a model-only
rebuild under 5 s. Prints a Markdown section for bench/RESULTS.md.

    python bench/build.py [--runs 5] [--gpu] [--base-image local/python:3.11-slim]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

from mlgit.build.engine import docker_client
from mlgit.build.run import Published, start_container, stop_container, wait_ready
from mlgit.config.load import load_project

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RUNTIME = "mlgit-bench/serving-runtime"
MODEL = "mlgit-bench/iris-classifier"


BUILT: list[str] = []  # image IDs of model images, removed at the end (each rebuild orphans the previous one)


def _mlgit(*args: str | Path, env: dict[str, str] | None = None) -> float:
    """Seconds one `mlgit` command takes, start of the process to its exit."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mlgit", *map(str, args)], check=True, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if args[0] == "build" and "--runtime" not in args:
        BUILT.append(result.stdout.decode().strip())
    return elapsed


def _runtime(repo: Path, base: str, device: str, no_cache: bool) -> float:
    flags = ["--no-cache"] if no_cache else []
    return _mlgit(
        "build", repo, "--runtime", "--base-image", base, "--tag", f"{RUNTIME}:{device}",
        "--secret", f"id=ca,src={CA_BUNDLE}", "--network", "host", *flags,
    )  # fmt: skip


def _touch_model(repo: Path, run: int) -> None:
    """A new model file with the same graph (another doc string): what retraining changes."""
    path = repo / "model" / "model.onnx"
    model = onnx.load(path)
    model.doc_string = f"bench rebuild {run}"
    onnx.save(model, path)


def _model_rebuilds(repo: Path, runs: int, builder: str) -> list[float]:
    env = {**os.environ, "DOCKER_BUILDKIT": "0" if builder == "sdk" else "1"}
    times = []
    for run in range(runs):
        _touch_model(repo, run)
        times.append(_mlgit("build", repo, "--runtime-image", f"{RUNTIME}:cpu", "--tag", f"{MODEL}:{builder}", env=env))
    return times


def _cold_starts(repo: Path, runs: int) -> list[float]:
    client = docker_client()
    config = load_project(repo).config
    times = []
    for _ in range(runs):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        start = time.perf_counter()
        container = start_container(client, f"{MODEL}:buildkit", config, Published("127.0.0.1", port))
        try:
            wait_ready(container, f"http://127.0.0.1:{port}")
            times.append(time.perf_counter() - start)
            stop_container(container, config.serving.drain_seconds)
        finally:
            container.remove(force=True)
    return times


def _mib(image: str) -> float:
    return docker_client().images.get(image).attrs["Size"] / 2**20


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gpu", action="store_true", help="also build the GPU runtime from scratch (244 MiB wheel)")
    parser.add_argument("--base-image", default="local/python:3.11-slim")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        iris, seg = Path(tmp) / "iris", Path(tmp) / "seg"
        subprocess.run([sys.executable, "-m", "mlgit", "init", "--example", "iris-classifier", iris], check=True)
        subprocess.run([sys.executable, "-m", "mlgit", "init", "--example", "image-segmentation", seg], check=True)
        rows = [("CPU runtime, from scratch (--no-cache)", f"{_runtime(iris, args.base_image, 'cpu', True):.1f} s")]
        rows.append(("CPU runtime, nothing changed", f"{_runtime(iris, args.base_image, 'cpu', False):.2f} s"))
        if args.gpu:
            rows.append(("GPU runtime, from scratch", f"{_runtime(seg, args.base_image, 'gpu', True):.1f} s"))
        first = _mlgit("build", iris, "--runtime-image", f"{RUNTIME}:cpu", "--tag", f"{MODEL}:first")
        rows.append(("model image, first build on the runtime", f"{first:.2f} s"))
        for builder in ("buildkit", "sdk"):
            label = "BuildKit (docker CLI)" if builder == "buildkit" else "legacy builder (SDK)"
            rows.append((f"model-only rebuild, {label}", _median(_model_rebuilds(iris, args.runs, builder))))
        rows.append(("`mlgit --version` (process start, imports)", _median([_mlgit("--version") for _ in range(3)])))
        rows.append(("cold start: docker run -> /v2/health/ready 200", _median(_cold_starts(iris, args.runs))))
        cpu, model = _mib(f"{RUNTIME}:cpu"), _mib(f"{MODEL}:buildkit")
        rows.append(("image size: CPU runtime", f"{cpu:.0f} MiB"))
        if args.gpu:
            rows.append(("image size: GPU runtime", f"{_mib(f'{RUNTIME}:gpu'):.0f} MiB"))
        rows.append(("image size: model image over its runtime", f"{(model - cpu) * 1024:.0f} KiB"))
        rows.append(("image size: base image", f"{_mib(args.base_image):.0f} MiB"))
    for image_id in dict.fromkeys(BUILT):
        docker_client().images.remove(image_id, force=True)
    print(f"Machine: {platform.platform()}, {platform.python_version()}, median of {args.runs} runs\n")
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
