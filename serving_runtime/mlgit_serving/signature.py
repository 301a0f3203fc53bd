"""A model's tensor signature: what onnxruntime reports, refined by model-settings.json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .datatypes import NUMPY_DTYPES, ORT_TYPES
from .errors import ModelLoadError
from .model_settings import TensorSpec


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...] | None  # -1 marks a dynamic dimension; None: the model does not fix the rank
    dtype: np.dtype

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": None if self.shape is None else list(self.shape)}


@dataclass(frozen=True, slots=True)
class Signature:
    inputs: dict[str, Tensor]
    outputs: dict[str, Tensor]

    @property
    def batchable(self) -> bool:
        """True when every tensor's first dimension is dynamic, i.e. requests can be stacked along it."""
        tensors = [*self.inputs.values(), *self.outputs.values()]
        return all(t.shape and t.shape[0] == -1 for t in tensors)


def _from_node(node: Any, role: str) -> Tensor:
    datatype = ORT_TYPES.get(node.type)
    if datatype is None:
        raise ModelLoadError(
            f"{role} {node.name!r} has type {node.type}, which the Open Inference Protocol cannot carry "
            "(export the model with plain tensors, e.g. skl2onnx options={'zipmap': False})"
        )
    # onnxruntime reports an unknown rank as [], like a scalar's: only model-settings.json (written from the ONNX
    # graph, which tells them apart) can say it is a scalar, so [] is taken as "any shape" until it does.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape) if node.shape else None
    return Tensor(node.name, datatype, shape, NUMPY_DTYPES[datatype])


def _refine(found: dict[str, Tensor], declared: list[TensorSpec] | None, role: str) -> dict[str, Tensor]:
    """Check model-settings.json against the model; its fixed dimensions may narrow dynamic ones."""
    if declared is None:
        return found
    names = [spec.name for spec in declared]
    if sorted(names) != sorted(found):
        raise ModelLoadError(f"model-settings.json declares {role}s {names} but the model has {list(found)}")
    refined = {}
    for spec in declared:
        actual = found[spec.name]
        if spec.datatype != actual.datatype:
            raise ModelLoadError(
                f"{role} {spec.name!r}: model-settings.json says {spec.datatype}, the model says {actual.datatype}"
            )
        if spec.shape is None or actual.shape is None:
            # Whichever side knows the shape says it (model-settings.json null: the model does not fix the rank).
            shape = actual.shape if spec.shape is None else tuple(spec.shape)
        elif len(spec.shape) == len(actual.shape) and all(
            a == -1 or a == s for a, s in zip(actual.shape, spec.shape, strict=True)
        ):
            shape = tuple(spec.shape)
        else:
            raise ModelLoadError(
                f"{role} {spec.name!r}: model-settings.json shape {spec.shape} does not fit the model's "
                f"{list(actual.shape)}"
            )
        refined[spec.name] = Tensor(spec.name, spec.datatype, shape, actual.dtype)
    return refined


def signature_of(session: Any, inputs: list[TensorSpec] | None, outputs: list[TensorSpec] | None) -> Signature:
    found_in = {n.name: _from_node(n, "input") for n in session.get_inputs()}
    found_out = {n.name: _from_node(n, "output") for n in session.get_outputs()}
    return Signature(_refine(found_in, inputs, "input"), _refine(found_out, outputs, "output"))
