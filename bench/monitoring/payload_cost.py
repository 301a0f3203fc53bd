"""What payload logging costs on the inference path: the MLP of bench/serving/bench.py ([N,64] -> 10, JSON
body) served by mlgit-serving with payload logging off, then sending every request (rate 1) and one in ten
(rate 0.1) to a local HTTP sink answering 200, then every request to a dead sink (nothing listening: each
batch fails its three attempts, the queue fills and events are dropped) to show that inference does not
wait for it. Same measurement as cost.py (wrk; req/s, latency, the server's CPU time per request).

    python bench/monitoring/payload_cost.py [--duration 5] [--rounds 2] [--connections 8] >> bench/monitoring/RESULTS.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serving"))
from bodies import oip_bodies
from cost import FEATURES, LUA, Sink, measure, report, write_model
from models import mlp_model
from peers import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    sink = Sink()
    dead = f"http://127.0.0.1:{free_port()}/events"  # a free port: connection refused
    modes: dict[str, dict[str, str]] = {
        "off": {},
        "payload (rate 1)": {"MLGIT_SERVING_PAYLOAD_LOG_URL": sink.url("/events")},
        "payload (rate 0.1)": {
            "MLGIT_SERVING_PAYLOAD_LOG_URL": sink.url("/events"),
            "MLGIT_SERVING_PAYLOAD_LOG_SAMPLE_RATE": "0.1",
        },
        "payload (rate 1), dead sink": {"MLGIT_SERVING_PAYLOAD_LOG_URL": dead},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_path = work / "mlp.onnx"
        onnx.save(mlp_model(np.random.default_rng(0)), model_path)
        row = np.random.default_rng(1).random((1, FEATURES), dtype=np.float32)
        body_path, content_type, _ = oip_bodies(work, "mlp", row)["JSON"]
        lua = work / "post.lua"
        lua.write_text(LUA)
        results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for round_ in range(args.rounds):
            for index, (mode, env) in enumerate(modes.items()):
                repo = work / f"repo-{round_}-{index}"
                write_model(repo, model_path, None)
                results[mode].append(measure(repo, env, body_path, content_type, lua, args))
        print(report(results, [], sink.posts))


if __name__ == "__main__":
    main()
