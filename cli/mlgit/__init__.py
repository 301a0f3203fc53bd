"""mlgit: from an ONNX model to production on Kubernetes with GitLab."""

__version__ = "0.1.0"
