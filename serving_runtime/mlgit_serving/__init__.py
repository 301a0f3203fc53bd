"""mlgit's model server: Open Inference Protocol v2 (REST) over FastAPI and onnxruntime."""

__version__ = "0.1.0"
