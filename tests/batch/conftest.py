"""Fixtures of the batch runner's tests: the iris example as the runtime sees it, and its onnxruntime answers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from mlgit.config.load import load_project
from mlgit.serve import runtime_repository
from tests.conftest import REPO_ROOT, free_port

IRIS = REPO_ROOT / "examples" / "iris-classifier"


@pytest.fixture(scope="module")
def iris_runtime() -> Iterator[Path]:
    """The iris example in the runtime's model-repository layout (what `mlgit batch` hands the runner)."""
    with runtime_repository(load_project(IRIS, warn=False)) as root:
        yield root


def onnxruntime_answers(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs for one file's inputs, from a plain onnxruntime session: what the runner must match."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


def assert_same_outputs(written: Path | bytes, expected: dict[str, np.ndarray]) -> None:
    """An output .npz (a file, or an object's bytes) holds exactly `expected`'s arrays, floats within rounding."""
    with np.load(io.BytesIO(written) if isinstance(written, bytes) else written) as archive:
        assert sorted(archive.files) == sorted(expected), written
        for name, want in expected.items():
            got = archive[name]
            assert got.dtype == want.dtype and got.shape == want.shape, (written, name)
            # Rows stacked with other files' rows take other kernels' paths than a lone run: a float may differ
            # in its last bits (measured up to 1.4e-6 relative on iris), an integer not at all.
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name}")


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:  # poll until it answers (a readiness probe, not a sleep)
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode() if server.stderr else "moto_server exited"
                assert time.monotonic() < deadline, "moto_server did not answer within 60 s"
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("MLGIT_BATCH_S3_ENDPOINT", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"b{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    return client
