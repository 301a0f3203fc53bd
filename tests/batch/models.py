"""Tiny real ONNX models and input files for the batch runner's tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: tuple[Any, ...] = ()) -> Path:
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, list(inits)), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 9
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_segmenter(path: Path, size: int = 8) -> Path:
    """image[batch, 1, size, size] FP32 -> mask = sigmoid(image) (same shape), mean[batch] = its mean."""
    return _save(
        path,
        [
            helper.make_node("Sigmoid", ["image"], ["mask"]),
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1, 2, 3], keepdims=0),
        ],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, size, size])],
        [
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, size, size]),
            helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch"]),
        ],
    )


def write_rgb_copier(path: Path) -> Path:
    """rgb[batch, 4, 6, 3] FP32 (NHWC: 4 rows, 6 columns, 3 channels) -> copy, unchanged."""
    return _save(
        path,
        [helper.make_node("Identity", ["rgb"], ["copy"])],
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 4, 6, 3])],
        [helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["batch", 4, 6, 3])],
    )


def write_lookup(path: Path) -> Path:
    """index[batch] INT64 -> row[batch, 3] FP32 = a table of 10 rows; an index past 9 makes onnxruntime fail."""
    table = numpy_helper.from_array(np.arange(30, dtype=np.float32).reshape(10, 3), "table")
    return _save(
        path,
        [helper.make_node("Gather", ["table", "index"], ["row"], axis=0)],
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("row", TensorProto.FLOAT, ["batch", 3])],
        (table,),
    )


def runtime_repository(root: Path, name: str, onnx_path: Path, settings: dict[str, Any]) -> Path:
    """The serving runtime's layout: <root>/<name>/model-settings.json and <root>/<name>/1/model.onnx."""
    (root / name / "1").mkdir(parents=True)
    (root / name / "1" / "model.onnx").write_bytes(onnx_path.read_bytes())
    (root / name / "model-settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return root


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def fits_bytes(data: np.ndarray, bitpix: int, cards: dict[str, Any] | None = None, axes: tuple[int, ...] = ()) -> bytes:
    """A FITS file of one primary image, written here by the standard (data is [rows, columns], stored as is)."""
    dtype = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}[bitpix]
    header = {"SIMPLE": "T", "BITPIX": bitpix, "NAXIS": 2 + len(axes), "NAXIS1": data.shape[1], "NAXIS2": data.shape[0]}
    header |= {f"NAXIS{3 + i}": n for i, n in enumerate(axes)}
    header |= cards or {}
    text = "".join(f"{key:<8}= {value!s:>20}".ljust(80) for key, value in header.items()) + "END".ljust(80)
    text += " " * (-len(text) % 2880)
    raw = data.astype(dtype).tobytes()
    return text.encode("ascii") + raw + b"\0" * (-len(raw) % 2880)
