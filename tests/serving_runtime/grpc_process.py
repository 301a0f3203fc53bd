"""A server process with gRPC on, for tests that talk to it through tritonclient.grpc.

A process, not a thread of the test run: the server's gRPC stubs and tritonclient.grpc's both define the
protobuf package `inference`, and protobuf refuses a second definition in one process.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tritonclient.grpc as triton_grpc

from tests.conftest import free_port

from .test_lifecycle import DEADLINE, ServerProcess

# tritonclient.grpc reports the gRPC status name; REST's tests compare HTTP statuses.
HTTP_STATUS = {
    "StatusCode.INVALID_ARGUMENT": "400",
    "StatusCode.UNAUTHENTICATED": "401",
    "StatusCode.PERMISSION_DENIED": "403",
    "StatusCode.NOT_FOUND": "404",
    "StatusCode.RESOURCE_EXHAUSTED": "413",
    "StatusCode.UNAVAILABLE": "503",
}


class GrpcServerProcess(ServerProcess):
    def __init__(self, repository: Path, **settings: object) -> None:
        self.grpc_port = free_port()
        env = {f"MLGIT_SERVING_{k.upper()}": str(v) for k, v in settings.items()}
        env["MLGIT_SERVING_GRPC_PORT"] = str(self.grpc_port)
        args = [sys.executable, "-m", "mlgit_serving", "--model-repository", str(repository)]
        try:
            super().__init__([*args, "--host", "127.0.0.1", "--port", "0"], env)
        except BaseException:  # it never listened: end it here, no test will
            if hasattr(self, "process"):
                self.process.kill()
                self.process.wait()
            raise

    def _read_logs(self) -> None:
        # As ServerProcess's, https too (the TLS test)
        for line in self.process.stderr:
            entry = json.loads(line)  # every line the server writes must be one JSON object
            self.logs.append(entry)
            match = re.search(r"running on https?://127\.0\.0\.1:(\d+)", entry["message"])
            if match:
                self.port = int(match.group(1))
                self._listening.set()

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def client(self) -> triton_grpc.InferenceServerClient:
        return triton_grpc.InferenceServerClient(self.grpc_address)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # Ctrl-C: no shutdown delay
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()


@contextmanager
def grpc_server_process(repository: Path, **settings: object) -> Iterator[GrpcServerProcess]:
    """A ready server on `repository` with ServerSettings `settings` (as MLGIT_SERVING_* variables)."""
    server = GrpcServerProcess(repository, **settings)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
