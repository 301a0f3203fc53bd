"""gRPC settings that cannot work are refused before the server starts, naming grpc_port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mlgit_serving.settings import ServerSettings

from .conftest import classifier, write_model
from .grpc_process import grpc_server_process


@pytest.mark.parametrize("other", ["port", "metrics_port"])
def test_grpc_port_must_differ_from_the_other_ports(other: str) -> None:
    with pytest.raises(ValidationError, match="grpc_port: 9000 is also the main or metrics port"):
        ServerSettings(**{"port": 8080, other: 9000, "grpc_port": 9000})


def test_a_taken_grpc_port_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    write_model(tmp_path, "iris", {"1": classifier(0.0)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "mlgit_serving", "--model-repository", str(tmp_path), "--host", "127.0.0.1"],
            env={**os.environ, "MLGIT_SERVING_PORT": "0", "MLGIT_SERVING_GRPC_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # JSON lines only, no traceback
    assert lines[-1]["message"] == f"grpc_port: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_server_cannot_share_a_served_grpc_port(tmp_path: Path, workers: int) -> None:
    """Binding with SO_REUSEPORT would let a second server of the same user join the port and answer part
    of the first one's calls (without its authentication): it must be refused instead."""
    write_model(tmp_path, "iris", {"1": classifier(0.0)})
    with grpc_server_process(tmp_path, workers=workers) as first:
        second = subprocess.Popen(
            [sys.executable, "-m", "mlgit_serving", "--model-repository", str(tmp_path), "--host", "127.0.0.1"],
            env={**os.environ, "MLGIT_SERVING_PORT": "0", "MLGIT_SERVING_GRPC_PORT": str(first.grpc_port)},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = second.communicate(timeout=60)  # a second server that joined the port never exits
        finally:
            second.kill()
    assert second.returncode == 1
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert lines[-1]["message"] == f"grpc_port: cannot listen on 127.0.0.1:{first.grpc_port}: Address already in use"
