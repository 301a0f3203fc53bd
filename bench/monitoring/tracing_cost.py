"""What tracing costs on the inference path, with cost.py's MLP, sink and wrk setup: tracing off, on at
sample rate 1 (every request's five spans exported to a local OTLP/HTTP sink answering 200) and on at rate 0
(spans created, none recorded), and optionally the runtime from before tracing existed (`--before DIR`, a
folder holding an `mlgit_serving` package, e.g. `git archive <rev> serving_runtime | tar -x`), to show that
"off" costs nothing.

    python bench/monitoring/tracing_cost.py [--before DIR] [--duration 5] [--rounds 3] >> bench/monitoring/RESULTS.md
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
from cost import FEATURES, LUA, Sink, measure, mlp_model, oip_bodies, report, write_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a folder with the mlgit_serving package to compare against")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    sink = Sink()
    endpoint = {"MLGIT_SERVING_TRACING_ENDPOINT": sink.url("/v1/traces")}
    modes: dict[str, dict[str, str]] = {
        **({"before tracing": {"PYTHONPATH": str(args.before.resolve())}} if args.before else {}),
        "off": {},
        "tracing (rate 1)": {**endpoint, "MLGIT_SERVING_TRACING_SAMPLE_RATE": "1"},
        "tracing (rate 0)": {**endpoint, "MLGIT_SERVING_TRACING_SAMPLE_RATE": "0"},
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
        for round_ in range(args.rounds):  # modes interleaved, so that drifting machine load hits them all
            for index, (mode, env) in enumerate(modes.items()):
                repo = work / f"repo-{round_}-{index}"
                write_model(repo, model_path, None)
                results[mode].append(measure(repo, env, body_path, content_type, lua, args))
        print(report(results, [], sink.posts))


if __name__ == "__main__":
    main()
