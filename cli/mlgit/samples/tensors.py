"""Sample requests: generating one from a signature, and checking a model's answer against one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgit.config.serving import Signature, TensorSpec
from mlgit.errors import Location, MlgitError
from mlgit.inference import load_session, run_session

if TYPE_CHECKING:  # config.load checks the sample through this package: no import of it at run time
    from mlgit.config.load import Project

OIP_TO_NUMPY = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}  # fmt: skip
FLOAT_TYPES = {"FP16", "FP32", "FP64"}


def _sample_tensor(spec: TensorSpec, rng: np.random.Generator) -> np.ndarray:
    # An input whose rank the model does not say gets one value: a guess, which make_sample owns up to.
    shape = [1] if spec.shape is None else [1 if d == -1 else d for d in spec.shape]
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


def answer(model_path: Path, inputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Every output of the model for OIP v2 input tensors, computed as the serving runtime does (onnxruntime, CPU).

    A model onnxruntime cannot load raises MlgitError; inputs it cannot run raise ValueError with its message.
    """
    session = load_session(model_path)
    return run_session(session, {t["name"]: from_oip(t) for t in inputs})


def run_onnxruntime(model_path: Path, inputs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """`answer`, with a failed run as an MlgitError (the generated tests/test_model.py calls this)."""
    try:
        return answer(model_path, inputs)
    except ValueError as exc:
        raise MlgitError(f"onnxruntime cannot run the sample request: {exc}", location=Location(model_path)) from None


def make_sample(model_path: Path, signature: Signature) -> dict[str, Any]:
    """A one-row sample request for `signature` with the model's answer as its expected outputs."""
    rng = np.random.default_rng(0)
    inputs = [to_oip(s.name, s.datatype, _sample_tensor(s, rng)) for s in signature.inputs]
    try:
        outputs = answer(model_path, inputs)
    except ValueError as exc:
        shapeless = [s.name for s in signature.inputs if s.shape is None]
        if not shapeless:
            raise MlgitError(
                f"onnxruntime cannot run a sample request made from the model's signature: {exc}",
                "check that the model runs on inputs of the shapes and types its graph declares",
                location=Location(model_path),
            ) from None
        raise MlgitError(
            f"the model does not say the rank of input(s) {', '.join(map(repr, shapeless))}, and onnxruntime "
            f"rejects a sample of shape [1]: {exc}",
            "give those inputs their shape in the model (the exporter's input shapes, or "
            "onnx.tools.update_model_dims.update_inputs_outputs_dims) and run init again",
            location=Location(model_path),
        ) from None
    by_name = {s.name: s for s in signature.outputs}
    return {"inputs": inputs, "expected_outputs": [to_oip(n, by_name[n].datatype, a) for n, a in outputs.items()]}


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


def run_sample(project: Project) -> dict[str, np.ndarray]:
    """The model's answer to the sample request, run as the serving runtime would (onnxruntime, CPU)."""
    try:
        return answer(project.root / project.config.model.path, project.sample["inputs"])
    except ValueError as exc:
        raise MlgitError(
            f"onnxruntime cannot run the sample request: {exc}",
            "fix the sample's inputs so that the model runs on them",
            location=Location(project.root / project.config.model.sample.path),
        ) from None


def check_answers(project: Project) -> None:
    """Run the sample request as the serving runtime would and compare with its expected outputs."""
    sample_cfg = project.config.model.sample
    sample_path = project.root / sample_cfg.path
    outputs = run_sample(project)
    problems = compare_outputs(project.sample.get("expected_outputs", []), outputs, sample_cfg.rtol, sample_cfg.atol)
    if problems:
        raise MlgitError(
            "the model's answer to the sample request is not the sample's expected_outputs",
            "after retraining, `mlgit sample` recomputes them and shows what changed; otherwise the model "
            "(or its export) changed behaviour",
            location=Location(sample_path),
            problems=problems,
        )
