"""MLServer 1.7.1 with the custom onnxruntime runtime of mlserver_runtime.py (its docs' pattern), V2 JSON.

Writes an MLServer model repository (settings.json plus one folder per model) and execs `mlserver start`
on it. One process (`parallel_workers: 0`: on one core a worker process only adds IPC). With --batched,
MLServer's adaptive batching: max_batch_size 32, max_batch_time 2 ms. MLServer has no binary tensor
extension on REST.

    python mlserver_peer.py --port 8000 --grpc-port 8001 --metrics-port 8002 --models DIR --workdir DIR
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_repository(root: Path, models: Path, args: argparse.Namespace) -> None:
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "http_port": args.port,
        "grpc_port": args.grpc_port,
        "metrics_port": args.metrics_port,
        "parallel_workers": 0,
        "debug": False,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    for path in sorted(models.glob("*.onnx")):
        directory = root / path.stem
        directory.mkdir(exist_ok=True)
        shutil.copy(path, directory / "model.onnx")
        shutil.copy(HERE / "mlserver_runtime.py", directory / "mlserver_runtime.py")
        model = {
            "name": path.stem,
            "implementation": "mlserver_runtime.OnnxRuntimeModel",
            "parameters": {"uri": "./model.onnx"},
        }
        if args.batched:
            model |= {"max_batch_size": 32, "max_batch_time": 0.002}
        (directory / "model-settings.json").write_text(json.dumps(model))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="where the MLServer repository is written")
    parser.add_argument("--batched", action="store_true")
    args = parser.parse_args()
    write_repository(args.workdir, args.models, args)
    mlserver = Path(sys.executable).parent / "mlserver"
    os.chdir(args.workdir)
    os.execv(mlserver, [str(mlserver), "start", str(args.workdir)])
