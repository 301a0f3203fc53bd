"""The "no framework" baseline: one FastAPI endpoint speaking V2 JSON, onnxruntime inline, no batching.

What a user writes in an afternoon: `Request.json()`, numpy, `session.run`, a dict back (FastAPI's default
JSONResponse). Run with the peer venv's Python (bench/serving/setup_peers.sh):

    python fastapi_peer.py --port 8000 --models DIR      # DIR holds mlp.onnx and cnn.onnx
"""

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def create_app(models: Path) -> FastAPI:
    sessions = {path.stem: session(path) for path in models.glob("*.onnx")}
    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> dict:
        tensor = (await request.json())["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        (y,) = sessions[name].run(None, {tensor["name"]: x})
        return {
            "model_name": name,
            "outputs": [{"name": "output", "datatype": "FP32", "shape": list(y.shape), "data": y.ravel().tolist()}],
        }

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--batched", action="store_true", help="ignored: this server has no batching")
    args = parser.parse_args()
    uvicorn.run(create_app(args.models), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
