"""The runner inside the model image, as the batch Job runs it: `python -m mlgit_serving.batch` over
bind-mounted folders, as a uid the image has never heard of, with a read-only root filesystem."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.batch.conftest import IRIS, assert_same_outputs, onnxruntime_answers

pytestmark = pytest.mark.integration


def test_the_model_image_runs_the_batch_runner(docker_cli: str, iris_image: str, tmp_path: Path) -> None:
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir(mode=0o777)
    outputs.chmod(0o777)  # the container's uid writes here
    arrays = {f"{i:02d}.npz": np.random.default_rng(i).normal(5, 2, (i + 1, 4)).astype(np.float32) for i in range(20)}
    for name, array in arrays.items():
        np.savez(inputs / name, input=array)
    (inputs / "bad.npz").write_bytes(b"not an archive")
    command = [
        docker_cli, "run", "--rm", "--user", "1234567:0", "--read-only", "--tmpfs", "/tmp",
        "-v", f"{inputs}:/data/in:ro", "-v", f"{outputs}:/data/out", "-e", "JOB_COMPLETION_INDEX=0",
        "-e", "MLGIT_BATCH_SHARDS=1", "--entrypoint", "python", iris_image,
        "-m", "mlgit_serving.batch", "--input", "/data/in", "--output", "/data/out",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stderr  # the bad file
    assert "failed: bad.npz: not a .npz file" in result.stderr
    assert "20 done, 0 skipped (outputs present), 1 failed" in result.stderr
    for name, array in arrays.items():
        assert_same_outputs(outputs / name, onnxruntime_answers(IRIS / "model" / "model.onnx", {"input": array}))
    again = subprocess.run([*command[:-4], "--input", "/data/in", "--output", "/data/out", "--shard", "0/2"],
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert "0 done, 10 skipped (outputs present), 1 failed" in again.stderr, again.stderr
