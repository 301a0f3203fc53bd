"""s3:// inputs and outputs against a real S3 API server (moto's, started as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mlgit_serving.batch.errors import BatchError
from mlgit_serving.batch.runner import run_batch
from tests.batch.conftest import IRIS, assert_same_outputs, onnxruntime_answers
from tests.batch.models import npz_bytes
from tests.conftest import free_port

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


def test_inputs_and_outputs_in_a_bucket(s3: Any, iris_runtime: Path) -> None:
    rng = np.random.default_rng(3)
    arrays = {f"day1/{i:02d}.npz": rng.normal(5, 2, (i % 5 + 1, 4)).astype(np.float32) for i in range(40)}
    for name, array in arrays.items():
        s3.put_object(Bucket=s3.bucket, Key=f"in/{name}", Body=npz_bytes(input=array))
    s3.put_object(Bucket=s3.bucket, Key="in/day1/broken.npz", Body=b"PK\x03\x04 not really")
    source, destination = f"s3://{s3.bucket}/in", f"s3://{s3.bucket}/results/"
    summary = run_batch(iris_runtime, source, destination)
    assert (summary.done, summary.failed) == (40, 1)
    assert summary.failures[0][0] == "day1/broken.npz"
    for name, array in arrays.items():
        body = s3.get_object(Bucket=s3.bucket, Key=f"results/{name}")["Body"].read()
        assert_same_outputs(body, onnxruntime_answers(IRIS / "model" / "model.onnx", {"input": array}))
    s3.delete_object(Bucket=s3.bucket, Key="results/day1/05.npz")
    again = run_batch(iris_runtime, source, destination)
    assert (again.done, again.skipped, again.failed) == (1, 39, 1)


def test_a_missing_bucket_stops_the_run_with_its_name(s3: Any, iris_runtime: Path, tmp_path: Path) -> None:
    with pytest.raises(BatchError, match=r"cannot list s3://no-such-bucket/x: NoSuchBucket"):
        run_batch(iris_runtime, "s3://no-such-bucket/x", str(tmp_path / "out"))


def test_outputs_under_the_input_prefix_are_refused(s3: Any, iris_runtime: Path) -> None:
    with pytest.raises(BatchError, match="is inside the input location"):
        run_batch(iris_runtime, f"s3://{s3.bucket}/in", f"s3://{s3.bucket}/in/out")
