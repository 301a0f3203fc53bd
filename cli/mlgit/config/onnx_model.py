"""What mlgit needs to know of an ONNX file: its signature, opsets, digest and external data files."""

from __future__ import annotations

import hashlib
import math
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

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
class ExternalData:
    """A file holding tensors outside the .onnx file (models over 2 GB must use them)."""

    location: str  # as written in the model: relative to the model's folder
    needed_bytes: int  # the file must be at least this long: the end of the last tensor read from it
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class OnnxModel:
    path: Path
    signature: Signature
    opsets: dict[str, int]
    sha256: str  # of the .onnx file only; external data files are not read
    external_data: tuple[ExternalData, ...] = ()


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
        # No shape field at all means the model does not fix the rank (not a scalar, which has an empty shape).
        shape = (
            [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor.shape.dim]
            if tensor.HasField("shape")
            else None
        )
        specs.append(TensorSpec(name=value.name, datatype=ONNX_TO_OIP[tensor.elem_type], shape=shape))
    return specs


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in `graph`: initializers and node attributes, subgraphs (If, Loop, Scan) included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


def _external_data(model: onnx.ModelProto, path: Path) -> tuple[ExternalData, ...]:
    files: dict[str, tuple[int, list[str]]] = {}
    for tensor in _graph_tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        try:
            info = ExternalDataInfo(tensor)
        except ValueError as exc:
            raise MlgitError(f"tensor {tensor.name!r}: {exc}", location=Location(path)) from None
        length = info.length
        if length is None:  # onnx then reads to the end of the file: the tensor's own size is the least it needs
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
            length = math.prod(tensor.dims) * itemsize
        end, names = files.get(info.location, (0, []))
        files[info.location] = (max(end, (info.offset or 0) + length), [*names, tensor.name])
    return tuple(ExternalData(loc, end, tuple(names)) for loc, (end, names) in sorted(files.items()))


def read_onnx(path: Path) -> OnnxModel:
    """Load `path` (without external weights) and read its serving signature and external data files."""
    if not path.is_file():
        raise MlgitError("file not found" + (" (it is a directory)" if path.is_dir() else ""), location=Location(path))
    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise MlgitError(
            f"the file is not an ONNX model (it does not parse: {exc.__class__.__name__})", location=Location(path)
        ) from None
    if not model.graph.node and not model.graph.output:
        raise MlgitError("the file is not an ONNX model (it has no graph)", location=Location(path))
    initializers = {init.name for init in model.graph.initializer}
    signature = Signature(
        inputs=_tensor_specs(list(model.graph.input), path, initializers),
        outputs=_tensor_specs(list(model.graph.output), path, set()),
    )
    opsets = {op.domain or "ai.onnx": op.version for op in model.opset_import}
    return OnnxModel(
        path=path,
        signature=signature,
        opsets=opsets,
        sha256=hashlib.sha256(data).hexdigest(),
        external_data=_external_data(model, path),
    )


def external_data_path(model: OnnxModel, data: ExternalData) -> Path:
    """Where `data` is on disk: its location read from the model's folder, as onnxruntime reads it."""
    return model.path.parent / data.location


def external_data_copies(model_path: str, model: OnnxModel) -> list[tuple[str, str]]:
    """(path relative to the repository, path relative to the model's folder) of each external data file,
    for a model at `model_path` (relative to the repository)."""
    folder = posixpath.dirname(model_path)
    return [
        (posixpath.normpath(posixpath.join(folder, d.location)), posixpath.normpath(d.location))
        for d in model.external_data
    ]


def _location_problem(location: str) -> str | None:
    """Why onnxruntime (and the image, which copies the file beside the model) cannot use `location`."""
    if not location or location.startswith("/") or "\\" in location or (len(location) > 1 and location[1] == ":"):
        return "is not a relative path"
    normal = posixpath.normpath(location)
    if normal.split("/")[0] == "..":
        return "points outside the model's folder"
    if normal == "model.onnx":
        return "is the name the model itself has in the serving image (model.onnx): re-export under another name"
    return None


def check_external_data(model: OnnxModel) -> None:
    """Every external data file the model names is in the model's folder and holds the bytes the model reads."""
    problems = []
    for data in model.external_data:
        tensors = ", ".join(data.tensors[:3]) + (f" and {len(data.tensors) - 3} more" if len(data.tensors) > 3 else "")
        where = _location_problem(data.location)
        if where:
            problems.append(f"external data location {data.location!r} (tensors {tensors}) {where}")
            continue
        path = external_data_path(model, data)
        size = path.stat().st_size if path.is_file() else None
        if size is None:
            problems.append(f"external data file {path} not found (tensors {tensors})")
        elif size < data.needed_bytes:
            problems.append(
                f"external data file {path} holds {size} bytes; the model reads up to byte "
                f"{data.needed_bytes} (tensors {tensors}): it is truncated or belongs to another export"
            )
    if problems:
        raise MlgitError(
            "the model's external data files are not usable",
            "keep every data file the exporter wrote beside the .onnx file, under the location the model names "
            "(re-export with onnx.save_model(..., save_as_external_data=True, location='model.onnx.data'))",
            location=Location(model.path),
            problems=problems,
        )


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
            if h.shape is None:
                continue  # the model does not fix the rank: any declared shape fits it
            if w.shape is None:
                problems.append(f"{side}: {name!r} is declared with any shape (null) but the model says {h.shape}")
            elif len(w.shape) != len(h.shape) or any(a != b and b != -1 for a, b in zip(w.shape, h.shape, strict=True)):
                problems.append(f"{side}: {name!r} is declared with shape {w.shape} but the model says {h.shape}")
    return sorted(problems)
