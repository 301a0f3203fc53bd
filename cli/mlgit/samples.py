"""Sample requests: generating one from a signature, and checking a model's answer against one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mlgit.config.serving import Signature, TensorSpec

OIP_TO_NUMPY = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}  # fmt: skip
FLOAT_TYPES = {"FP16", "FP32", "FP64"}


def _sample_tensor(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    shape = [1 if d == -1 else d for d in spec.shape]
    if spec.datatype in FLOAT_TYPES:
        return rng.standard_normal(shape).round(4).astype(OIP_TO_NUMPY[spec.datatype])
    if spec.datatype == "BOOL":
        return rng.integers(0, 2, shape).astype(np.bool_)
    if spec.datatype == "BYTES":
        return np.array(["sample"] * math.prod(shape), dtype=object).reshape(shape)
    return rng.integers(0, 10, shape).astype(OIP_TO_NUMPY[spec.datatype])


def to_oip(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    data = array.reshape(-1).tolist()
    if datatype == "BYTES":
        data = [v.decode() if isinstance(v, bytes) else str(v) for v in data]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def from_oip(tensor: dict[str, Any]) -> np.ndarray:
    dtype = OIP_TO_NUMPY[tensor["datatype"]]
    return np.array(tensor["data"], dtype=dtype).reshape(tensor["shape"])


def run_onnxruntime(model_path: Path, inputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Run the model in-process on OIP v2 input tensors (onnxruntime must be installed)."""
    import onnxruntime  # test/dev dependency only: the CLI itself must not need it

    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, {t["name"]: from_oip(t) for t in inputs})
    return dict(zip(names, results, strict=True))


def make_sample(model_path: Path, signature: Signature) -> dict[str, Any]:
    """A one-row sample request for `signature`, with expected outputs when onnxruntime is available."""
    rng = np.random.default_rng(0)
    inputs = [to_oip(s.name, s.datatype, _sample_tensor(s, rng)) for s in signature.inputs]
    sample: dict[str, Any] = {"inputs": inputs}
    try:
        outputs = run_onnxruntime(model_path, inputs)
    except ImportError:
        return sample  # without onnxruntime the sample still serves warm-up and liveness checks
    by_name = {s.name: s for s in signature.outputs}
    sample["expected_outputs"] = [to_oip(n, by_name[n].datatype, a) for n, a in outputs.items()]
    return sample


def compare_outputs(
    expected: list[dict[str, Any]], actual: dict[str, np.ndarray], rtol: float, atol: float
) -> list[str]:
    """Differences between expected OIP tensors and actual arrays; floats within tolerance, others exact."""
    problems = []
    for tensor in expected:
        name = tensor["name"]
        if name not in actual:
            problems.append(f"output {name!r} missing from the answer")
            continue
        want, got = from_oip(tensor), np.asarray(actual[name])
        if list(want.shape) != list(got.shape):
            problems.append(f"output {name!r}: shape {list(got.shape)}, expected {list(want.shape)}")
        elif tensor["datatype"] in FLOAT_TYPES:
            if not np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol):
                worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
                problems.append(f"output {name!r}: differs by up to {worst:.3g} (rtol {rtol}, atol {atol})")
        elif not np.array_equal(got.astype(want.dtype) if want.dtype != object else got, want):
            problems.append(
                f"output {name!r}: {got.reshape(-1)[:8].tolist()} != expected {want.reshape(-1)[:8].tolist()}"
            )
    return problems
