"""KServe's model server (kserve 0.21) with a custom Model running onnxruntime: V2 REST, JSON and binary.

KServe's own pattern for a custom predictor (kserve.Model with load/predict, kserve.ModelServer().start).
It has no request batching inside the model server (KServe batches in a separate agent sidecar), so
--batched is ignored. It binds 0.0.0.0 only. Per-request latency logging is off (KServe logs a line per
request by default: quieted, see below), gRPC off.

    python kserve_peer.py --port 8000 --models DIR      # DIR holds mlp.onnx and cnn.onnx
"""

import argparse
import logging
from pathlib import Path

import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.utils.utils import generate_uuid


class OnnxModel(Model):
    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    def predict(
        self, payload: InferRequest, headers: dict | None = None, response_headers: dict | None = None
    ) -> InferResponse:
        (y,) = self.session.run(None, {"input": payload.inputs[0].as_numpy()})
        binary = payload.use_binary_outputs
        output = InferOutput(name="output", shape=list(y.shape), datatype="FP32")
        output.set_data_from_numpy(y, binary_data=binary)
        return InferResponse(
            model_name=self.name,
            infer_outputs=[output],
            response_id=payload.id or generate_uuid(),
            use_binary_outputs=binary,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--batched", action="store_true", help="ignored: no batching inside KServe's server")
    args = parser.parse_args()
    server = ModelServer(http_port=args.port, enable_grpc=False, enable_latency_logging=False)
    # KServe logs two lines per request (its timing middleware and uvicorn's access log) whatever the flags
    # say; the other servers log none, so these loggers are quieted (the middleware itself still runs).
    for name in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([OnnxModel(path.stem, path) for path in sorted(args.models.glob("*.onnx"))])
