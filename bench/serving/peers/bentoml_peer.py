"""BentoML 1.4 with onnxruntime in a service, adaptive batching on, BentoML's own idiomatic API (not V2).

Each model is one batchable API: POST /mlp or /cnn with `{"input": [[...row...]]}`, answered with the
output array as JSON (nested lists). Batching: max_batch_size 32 and max_latency_ms 10000: BentoML's
dispatcher sheds load with 503s when its latency budget is short (a few ms), and 10 s keeps every request
served. One worker process, no access log (the other servers log no line per request either).

    python bentoml_peer.py --port 8000 --models DIR      # execs `bentoml serve` on this module
"""

import argparse
import os
import sys
from pathlib import Path

import bentoml
import numpy as np
import onnxruntime as ort

BATCHING = {"batchable": True, "batch_dim": 0, "max_batch_size": 32, "max_latency_ms": 10_000}


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class OnnxModels:
    def __init__(self) -> None:
        models = Path(os.environ["BENCH_MODELS"])
        self.sessions = {name: session(models / f"{name}.onnx") for name in ("mlp", "cnn")}

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        return self.sessions[name].run(None, {"input": x.astype(np.float32, copy=False)})[0]

    @bentoml.api(**BATCHING)
    def mlp(self, input: np.ndarray) -> np.ndarray:
        return self.run("mlp", input)

    @bentoml.api(**BATCHING)
    def cnn(self, input: np.ndarray) -> np.ndarray:
        return self.run("cnn", input)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--batched", action="store_true", help="adaptive batching: always on for this peer")
    args = parser.parse_args()
    os.environ["BENCH_MODELS"] = str(args.models.resolve())
    here = Path(__file__).resolve().parent
    bentoml_cli = Path(sys.executable).parent / "bentoml"
    os.chdir(here)
    command = ["serve", "bentoml_peer:OnnxModels", "--host", "127.0.0.1", "--port", str(args.port)]
    os.execv(bentoml_cli, [str(bentoml_cli), *command])
