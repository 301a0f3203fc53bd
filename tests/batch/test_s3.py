"""s3:// inputs and outputs against a real S3 API server (moto's, started as a subprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlgit_serving.batch.errors import BatchError
from mlgit_serving.batch.runner import run_batch
from tests.batch.conftest import IRIS, assert_same_outputs, onnxruntime_answers
from tests.batch.models import npz_bytes


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
