"""One face for tritonclient.http and tritonclient.grpc, so that an endpoint test runs through both.

The two clients differ in small ways: only HTTP chooses binary or JSON per tensor (gRPC always sends raw
tensors), gRPC answers protobuf messages (as_json gives their JSON form, with int64 values as strings) and
reports gRPC status names where HTTP reports statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from .grpc_process import HTTP_STATUS


@dataclass
class OipClient:
    protocol: str  # "http" or "grpc"
    client: Any

    @property
    def _module(self) -> Any:
        return triton_http if self.protocol == "http" else triton_grpc

    def tensor(self, name: str, value: np.ndarray, datatype: str, binary: bool = True) -> Any:
        tensor = self._module.InferInput(name, list(value.shape), datatype)
        if self.protocol == "http":
            tensor.set_data_from_numpy(value, binary_data=binary)
        else:
            tensor.set_data_from_numpy(value)
        return tensor

    def output(self, name: str, binary: bool = True) -> Any:
        if self.protocol == "http":
            return triton_http.InferRequestedOutput(name, binary_data=binary)
        return triton_grpc.InferRequestedOutput(name)

    def infer(self, model: str, inputs: list[Any], compression: str | None = None, **kwargs: Any) -> Any:
        if compression is not None:
            key = "request_compression_algorithm" if self.protocol == "http" else "compression_algorithm"
            kwargs[key] = compression
        return self.client.infer(model, inputs, **kwargs)

    def response(self, result: Any) -> dict[str, Any]:
        return result.get_response() if self.protocol == "http" else result.get_response(as_json=True)

    def server_metadata(self) -> dict[str, Any]:
        if self.protocol == "http":
            return self.client.get_server_metadata()
        return self.client.get_server_metadata(as_json=True)

    def model_metadata(self, name: str, version: str = "") -> dict[str, Any]:
        if self.protocol == "http":
            return self.client.get_model_metadata(name, version)
        metadata = self.client.get_model_metadata(name, version, as_json=True)
        for tensor in metadata["inputs"] + metadata["outputs"]:
            tensor["shape"] = [int(d) for d in tensor.get("shape", [])]  # JSON omits an empty list
        return metadata

    def status(self, error: InferenceServerException) -> str:
        """The HTTP status of a refusal (gRPC's status mapped the way the server maps it)."""
        status = error.status()
        return status if self.protocol == "http" else HTTP_STATUS.get(status, status)
