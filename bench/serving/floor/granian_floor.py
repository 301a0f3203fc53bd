"""granian against uvicorn: the per-request floor of an empty app, and mlgit-serving itself under each.

granian is not a dependency of the project: it runs from a virtual environment of its own, created with
the project's interpreter so that it sees the same FastAPI, uvloop and runtime:

    /work/main/.venv/bin/python -m venv --system-site-packages /tmp/granian-venv
    /tmp/granian-venv/bin/pip install granian
    python bench/serving/floor/granian_floor.py --granian-python /tmp/granian-venv/bin/python --rounds 3

Servers run on core 0, wrk (-t1) on core 1 (load.py); variants are interleaved (A, B, A, B, ...) and the table
reports the median of the rounds: req/s, and the server's CPU microseconds per request. This module is
also the application granian and uvicorn import (`granian_floor:empty_fastapi` and the others below).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from alternatives import write_repository  # noqa: E402
from load import WRK_SCRIPT, Server  # noqa: E402

empty_fastapi = FastAPI()


@empty_fastapi.get("/")
async def empty_endpoint() -> Response:
    return Response(b"", media_type="text/plain")


async def empty_rsgi(scope: Any, protocol: Any) -> None:
    """granian's own interface (RSGI) with nothing above it: the floor of granian itself."""
    protocol.response_bytes(200, [("content-type", "text/plain")], b"")


def mlgit_app() -> FastAPI:
    """mlgit-serving's app as server.run_process builds it, for granian (--factory); settings from
    MLGIT_SERVING_* variables. The uvicorn protocol (head limits, connection table) is what granian lacks."""
    from mlgit_serving.app import create_app
    from mlgit_serving.memory import freeze_startup_objects, keep_large_blocks
    from mlgit_serving.settings import ServerSettings

    keep_large_blocks()
    app = create_app(ServerSettings())
    freeze_startup_objects()
    return app


# A server variant: (name, kind of app, command builder taking (python, granian's python, port)).
Command = Callable[[str, str, int], list[str]]
UVICORN = ["--http", "httptools", "--loop", "uvloop", "--ws", "none", "--no-access-log", "--no-server-header"]
GRANIAN = ["--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "--no-access-log"]


def uvicorn(target: str) -> Command:
    return lambda python, _, port: [python, "-m", "uvicorn", *UVICORN, "--port", str(port), target]


def granian(interface: str, target: str, *extra: str) -> Command:
    options = ["--interface", interface, *GRANIAN, *extra]
    return lambda _, python, port: [python, "-m", "granian", *options, "--port", str(port), target]


VARIANTS: list[tuple[str, str, Command]] = [
    ("uvicorn", "empty", uvicorn("granian_floor:empty_fastapi")),
    ("granian-asgi", "empty", granian("asgi", "granian_floor:empty_fastapi")),
    ("granian-rsgi", "empty", granian("rsgi", "granian_floor:empty_rsgi")),
    ("uvicorn (server.py)", "mlgit", lambda python, _, port: [python, "-m", "mlgit_serving"]),
    ("granian-asgi", "mlgit", granian("asgi", "granian_floor:mlgit_app", "--factory")),
]

# (cell name, kind of app, path, body name or None for GET)
CELLS = [
    ("GET / (empty app)", "empty", "/", None),
    ("GET /v2/health/live", "mlgit", "/v2/health/live", None),
    ("MLP JSON infer, batching, 1 row", "mlgit", "/v2/models/mlp_batched/infer", ("mlp", "JSON")),
    ("CNN binary infer, batching, 1 row", "mlgit", "/v2/models/cnn_batched/infer", ("cnn", "binary")),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--granian-python", default="/tmp/granian-venv/bin/python", help="an interpreter with granian")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="granian-floor-") as tmp:
        work = Path(tmp)
        bodies = write_repository(work / "models", work)
        lua = work / "post.lua"
        lua.write_text(WRK_SCRIPT)
        env = {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH", "")])),
            "MLGIT_SERVING_MODEL_REPOSITORY": str(work / "models"),
            "MLGIT_SERVING_HOST": "127.0.0.1",
        }
        for round_ in range(args.rounds):
            for index, (name, kind, command) in enumerate(VARIANTS):
                port = 18700 + 10 * round_ + index
                ready = f"http://127.0.0.1:{port}" + ("/v2/health/ready" if kind == "mlgit" else "/")
                run_env = {**env, "MLGIT_SERVING_PORT": str(port)}
                argv = command(sys.executable, args.granian_python, port)
                server = Server(argv, ready, env=run_env, log=work / "log")
                try:
                    for cell, cell_kind, path, body in CELLS:
                        if cell_kind != kind:
                            continue
                        url = f"http://127.0.0.1:{port}{path}"
                        wrk: tuple[Any, ...] = (url, None, "", None, args.connections)
                        if body is not None:
                            body_path, content_type, header_length = bodies[body[0]][body[1]]
                            wrk = (url, body_path, content_type, header_length, args.connections)
                        server.measure(*wrk, 1, lua if body else None)  # warm-up: allocator, batch sizes
                        numbers = server.measure(*wrk, args.duration, lua if body else None)
                        results.setdefault((cell, name), []).append(numbers)
                        req_s, us = numbers["req_s"], numbers["cpu_us_per_req"]
                        print(f"{name:>20} {cell:<34} {req_s:>9.0f} req/s {us:>7.0f} us/req", flush=True)
                finally:
                    server.stop()
    print("\n| cell | server | req/s | server CPU us/req (rounds) | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for cell, kind, _, _ in CELLS:
        for name, variant_kind, _ in VARIANTS:
            if variant_kind != kind:
                continue
            runs = results[(cell, name)]
            us = [r["cpu_us_per_req"] for r in runs]
            spread = "-".join(f"{v:.0f}" for v in (min(us), max(us)))
            print(f"| {cell} | {name} | {statistics.median(r['req_s'] for r in runs):,.0f} | "
                  f"{statistics.median(us):.0f} ({spread}) | {statistics.median(r['p99_ms'] for r in runs):.2f} | "
                  f"{sum(r['errors'] for r in runs)} |")  # fmt: skip


if __name__ == "__main__":
    main()
