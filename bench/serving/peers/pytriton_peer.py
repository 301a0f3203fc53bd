"""Triton's own C++ HTTP/gRPC front end (nvidia-pytriton 0.7.0) with onnxruntime in its Python callable.

Triton's dynamic batcher is on (max batch 32, 2 ms queue delay); V2 REST with JSON and the binary tensor
extension, and V2 gRPC. Needs a venv of Debian's /usr/bin/python3 (bench/serving/setup_peers.sh): under
pyenv's Python the backend stub fails. Triton binds every address; the ports come from the flags.

    python pytriton_peer.py --port 8000 --grpc-port 8001 --models DIR      # DIR holds mlp.onnx and cnn.onnx
"""

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def infer_function(path: Path) -> tuple[ort.InferenceSession, Callable[..., dict[str, np.ndarray]]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    @batch
    def infer(input: np.ndarray) -> dict[str, np.ndarray]:
        (y,) = session.run(None, {"input": input})
        return {"output": y}

    return session, infer


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--batched", action="store_true", help="dynamic batching: always on for this peer")
    args = parser.parse_args()
    config = TritonConfig(http_port=args.port, grpc_port=args.grpc_port, metrics_port=args.metrics_port)
    with Triton(config=config) as triton:
        for path in sorted(args.models.glob("*.onnx")):
            session, infer = infer_function(path)
            row_shape = tuple(session.get_inputs()[0].shape[1:])
            triton.bind(
                model_name=path.stem,
                infer_func=infer,
                inputs=[Tensor(name="input", dtype=np.float32, shape=row_shape)],
                outputs=[Tensor(name="output", dtype=np.float32, shape=(10,))],
                config=ModelConfig(max_batch_size=32, batcher=DynamicBatcher(max_queue_delay_microseconds=2000)),
            )
        triton.serve()
