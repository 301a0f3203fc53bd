"""Fixtures of the batch runner's tests: the iris example as the runtime sees it, and its onnxruntime answers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from mlgit.config.load import load_project
from mlgit.serve import runtime_repository
from tests.conftest import REPO_ROOT

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
