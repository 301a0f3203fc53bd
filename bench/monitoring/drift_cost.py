"""What drift monitoring costs: DriftMonitor.observe alone per request (1 and 32 rows of 64 features, 10 bins,
the runtime's own code in-process), then cost.py's MLP served with drift off and on (interleaved rounds, wrk,
server on core 0 and wrk on core 1). The in-process figure is the one other load on the machine moves least.

    python bench/monitoring/drift_cost.py [--duration 5] [--rounds 3] >> bench/monitoring/RESULTS.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cost import FEATURES, LUA, drift_profile, measure, mlp_model, oip_bodies, report, write_model

from mlgit_serving.drift import DriftMonitor
from mlgit_serving.model_settings import DriftSettings


def observe_us(settings: DriftSettings, rows: int, rng: np.random.Generator, repeat: int = 5000) -> float:
    """Microseconds per DriftMonitor.observe call with a request of `rows` rows (best of three runs)."""
    monitor = DriftMonitor(settings, "mlp", "1")
    inputs = {"input": rng.random((rows, FEATURES), dtype=np.float32)}
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            monitor.observe(inputs)
        best = min(best, (time.perf_counter() - start) / repeat * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    profile = drift_profile(rng.random((5000, FEATURES), dtype=np.float32))
    settings = DriftSettings.model_validate(profile)
    print("| request rows | DriftMonitor.observe us/request |\n|---:|---:|")
    for rows in (1, 32):
        print(f"| {rows} | {observe_us(settings, rows, rng):.1f} |")
    print()
    modes = {"off": None, "drift": profile}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_path = work / "mlp.onnx"
        onnx.save(mlp_model(np.random.default_rng(0)), model_path)
        body_path, content_type, _ = oip_bodies(work, "mlp", rng.random((1, FEATURES), dtype=np.float32))["JSON"]
        lua = work / "post.lua"
        lua.write_text(LUA)
        results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for round_ in range(args.rounds):  # modes interleaved, so that changing machine load hits both
            for mode, drift in modes.items():
                repo = work / f"repo-{round_}-{mode}"
                write_model(repo, model_path, drift)
                results[mode].append(measure(repo, {}, body_path, content_type, lua, args))
        print(report(results, [], 0).rsplit("\n\n", 1)[0])


if __name__ == "__main__":
    main()
