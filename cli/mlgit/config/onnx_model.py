"""What mlgit needs to know of an ONNX file: its signature, opsets and digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from mlgit.config.serving import Signature, TensorSpec
from mlgit.errors import Location, MlgitError

# ONNX TensorProto element types -> Open Inference Protocol v2 datatypes.
ONNX_TO_OIP = {
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.UINT16: "UINT16",
    onnx.TensorProto.UINT32: "UINT32",
    onnx.TensorProto.UINT64: "UINT64",
    onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.INT16: "INT16",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.DOUBLE: "FP64",
    onnx.TensorProto.STRING: "BYTES",
}


@dataclass(frozen=True)
class OnnxModel:
    path: Path
    signature: Signature
    opsets: dict[str, int]
    sha256: str


def _tensor_specs(values: list[onnx.ValueInfoProto], path: Path, initializers: set[str]) -> list[TensorSpec]:
    specs = []
    for value in values:
        if value.name in initializers:  # old exporters list weights as graph inputs
            continue
        if not value.type.HasField("tensor_type"):
            raise MlgitError(
                f"{value.name!r} is not a tensor (sequence/map outputs cannot be served over OIP v2)",
                "export the model with plain tensor outputs (skl2onnx: options={'zipmap': False})",
                location=Location(path),
            )
        tensor = value.type.tensor_type
        if tensor.elem_type not in ONNX_TO_OIP:
            name = onnx.TensorProto.DataType.Name(tensor.elem_type)
            raise MlgitError(
                f"{value.name!r} has element type {name}, which OIP v2 cannot carry", location=Location(path)
            )
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor.shape.dim]
        specs.append(TensorSpec(name=value.name, datatype=ONNX_TO_OIP[tensor.elem_type], shape=shape))
    return specs


def read_onnx(path: Path) -> OnnxModel:
    """Load `path` (without external weights) and read its serving signature."""
    if not path.is_file():
        raise MlgitError(
            f"model file {path} not found",
            "set model.path in mlgit.yaml to the .onnx file, relative to mlgit.yaml",
            location=Location(path),
        )
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MlgitError(f"{path} is not an ONNX model ({exc.__class__.__name__})", location=Location(path)) from None
    if not model.graph.node and not model.graph.output:
        raise MlgitError(f"{path} is not an ONNX model (no graph)", location=Location(path))
    initializers = {init.name for init in model.graph.initializer}
    signature = Signature(
        inputs=_tensor_specs(list(model.graph.input), path, initializers),
        outputs=_tensor_specs(list(model.graph.output), path, set()),
    )
    opsets = {op.domain or "ai.onnx": op.version for op in model.opset_import}
    return OnnxModel(path=path, signature=signature, opsets=opsets, sha256=hashlib.sha256(data).hexdigest())


def signature_differences(declared: Signature, actual: Signature) -> list[str]:
    """Human-readable differences between a declared signature and the model's own."""
    problems = []
    for side in ("inputs", "outputs"):
        want = {t.name: t for t in getattr(declared, side)}
        have = {t.name: t for t in getattr(actual, side)}
        for name in want.keys() - have.keys():
            problems.append(f"{side}: {name!r} is declared but the model has no such {side[:-1]} "
                            f"(model {side}: {', '.join(have)})")  # fmt: skip
        for name in have.keys() - want.keys():
            problems.append(f"{side}: the model's {side[:-1]} {name!r} is not declared")
        for name in want.keys() & have.keys():
            w, h = want[name], have[name]
            if w.datatype != h.datatype:
                problems.append(f"{side}: {name!r} is declared {w.datatype} but the model says {h.datatype}")
            if len(w.shape) != len(h.shape) or any(a != b and b != -1 for a, b in zip(w.shape, h.shape, strict=False)):
                problems.append(f"{side}: {name!r} is declared with shape {w.shape} but the model says {h.shape}")
    return sorted(problems)
