"""The model image serves the OIP v2 gRPC API when MLGIT_SERVING_GRPC_PORT is set (the Deployment's way), on
the real Docker engine, read-only and as the unprivileged user: grpcio, protobuf and the stubs are in it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc

from tests.conftest import free_port

pytestmark = pytest.mark.integration
GRPC_PORT = 9000  # the manifests' port


def test_the_image_answers_grpc(docker_client: Any, iris_image: str, iris_repo: Path) -> None:
    port = free_port()
    container = docker_client.containers.run(
        iris_image,
        detach=True,
        user="10001:10001",
        read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
        cap_drop=["ALL"],
        environment={"MLGIT_SERVING_GRPC_PORT": str(GRPC_PORT)},
        ports={f"{GRPC_PORT}/tcp": ("127.0.0.1", port)},
    )
    try:
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 90
        while True:
            try:
                if client.is_server_ready(client_timeout=2):
                    break
            except triton_grpc.InferenceServerException:
                pass  # not listening yet
            container.reload()
            assert container.status == "running", container.logs()[-2000:]
            assert time.monotonic() < deadline, container.logs()[-2000:]
            time.sleep(0.5)
        metadata = client.get_model_metadata("iris-classifier", as_json=True)
        spec = metadata["inputs"][0]
        shape = [1 if int(d) < 0 else int(d) for d in spec["shape"]]
        tensor = triton_grpc.InferInput(spec["name"], shape, spec["datatype"])
        tensor.set_data_from_numpy(np.full(shape, 0.5, dtype=triton_grpc.triton_to_np_dtype(spec["datatype"])))
        result = client.infer("iris-classifier", [tensor])
        assert result.get_response().model_name == "iris-classifier"
        assert all(result.as_numpy(o["name"]) is not None for o in metadata["outputs"])
    finally:
        container.remove(force=True)
