"""Checking model/sample.json against the model's signature, so a bad sample fails `validate`, not warm-up."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlgit.config.serving import Signature, TensorSpec
from mlgit.errors import Location, MlgitError


def _tensor_problem(tensor: Any, where: str) -> str | None:
    """Why `tensor` is not an OIP v2 JSON tensor whose data fills its shape, or None."""
    if not isinstance(tensor, dict):
        return f"{where}: each tensor is an object with name, datatype, shape and data"
    name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
    if not isinstance(name, str) or not isinstance(tensor.get("datatype"), str):
        return f"{where}: 'name' and 'datatype' must be strings"
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        return f"{where} {name!r}: 'shape' must be a list of non-negative integers"
    if not isinstance(data, list):
        return f"{where} {name!r}: 'data' must be the flat row-major list of values"
    if len(data) != math.prod(shape):
        return f"{where} {name!r}: shape {shape} needs {math.prod(shape)} values, 'data' has {len(data)}"
    return None


def _fits(tensor: dict[str, Any], spec: TensorSpec) -> bool:
    shape = tensor["shape"]
    if tensor["datatype"] != spec.datatype:
        return False
    if spec.shape is None:  # the model does not fix the rank
        return True
    return len(shape) == len(spec.shape) and all(d == s or s == -1 for d, s in zip(shape, spec.shape, strict=True))


def _values_fit(data: list[Any], datatype: str) -> bool:
    if datatype == "BYTES":
        return all(isinstance(v, str) for v in data)
    if datatype == "BOOL":
        return all(isinstance(v, bool) for v in data)
    numbers = (int, float) if datatype.startswith("FP") else (int,)
    return all(isinstance(v, numbers) and not isinstance(v, bool) for v in data)


def check_sample(path: Path, signature: Signature) -> dict[str, Any]:
    """Load the sample request and check it against `signature`; every problem names the file."""
    where = Location(path)
    try:
        sample = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MlgitError(f"invalid JSON: {exc.msg}", location=Location(path, exc.lineno, exc.colno)) from None
    except UnicodeDecodeError:
        raise MlgitError("the sample is not UTF-8 text", "save it as UTF-8 JSON", location=where) from None
    if not isinstance(sample, dict) or not isinstance(sample.get("inputs"), list):
        raise MlgitError("the sample must be an object with an 'inputs' list (OIP v2 request)", location=where)
    expected = sample.get("expected_outputs", [])
    if not isinstance(expected, list):
        raise MlgitError("'expected_outputs' must be a list of tensors", location=where)
    problems = [p for i, t in enumerate(sample["inputs"]) if (p := _tensor_problem(t, f"inputs[{i}]"))]
    problems += [p for i, t in enumerate(expected) if (p := _tensor_problem(t, f"expected_outputs[{i}]"))]
    if problems:
        raise MlgitError("the sample does not hold valid tensors", location=where, problems=problems)
    inputs = {t.name: t for t in signature.inputs}
    given = [t["name"] for t in sample["inputs"]]
    if sorted(given) != sorted(inputs):
        raise MlgitError(
            f"sample inputs {sorted(given)} do not match the model inputs {sorted(inputs)}", location=where
        )
    outputs = {t.name: t for t in signature.outputs}
    for tensor in sample["inputs"]:
        spec = inputs[tensor["name"]]
        if not _fits(tensor, spec):
            raise MlgitError(
                f"sample input {spec.name!r} is {tensor['datatype']} {tensor['shape']}; "
                f"the model takes {spec.datatype} {'of any shape' if spec.shape is None else spec.shape}",
                location=where,
            )
        if not _values_fit(tensor["data"], spec.datatype):
            raise MlgitError(
                f"sample input {spec.name!r}: 'data' holds values that are not {spec.datatype}", location=where
            )
    for tensor in expected:
        if tensor["name"] not in outputs:
            raise MlgitError(
                f"expected output {tensor['name']!r} is not a model output ({', '.join(sorted(outputs))})",
                location=where,
            )
    return sample
