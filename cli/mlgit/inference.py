"""Running a model in-process the way the serving runtime does (onnxruntime, CPU), with causes users can act on.

onnxruntime reports a model it cannot load as one long C++ message; the common causes (an opset or IR
version newer than it supports, an operator of a custom domain, external data it cannot find) are
recognised here and said plainly, with the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mlgit.errors import Location, MlgitError

_OPSET = re.compile(r"Opset (\d+) is under development.*support for domain (\S+) is till opset (\d+)", re.DOTALL)
_IR_VERSION = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")
# An unknown operator, as the graph resolver or the kernel lookup reports it.
_UNKNOWN_OP = re.compile(r"(?:([\w.]+):)?(\w+)\(-?\d+\) is not a registered function/op")
_NODE = re.compile(r'In Node, \("[^"]*", (\w+), "([^"]*)".*(No Op registered|No opset import)', re.DOTALL)
# onnxruntime's prefixes before the message itself: "[ONNXRuntimeError] : 1 : FAIL : Load model from X failed:",
# C++ source locations and the signature of the function that failed.
_NOISE = re.compile(
    r"^\[ONNXRuntimeError\] : \d+ : \w+ : |Load model from .*? failed:|/onnxruntime_src/\S+ [^(]*\([^)]*\) "
    r"|\b\w+\.(?:cc|h):\d+ \w+ "
)
_NEWER_RUNTIME = "use an onnxruntime that supports it, both here and in the serving image (image.runtime_version)"


def _ort() -> Any:
    import onnxruntime  # the CPU package is a dependency of mlgit; imported here, as it is slow to import

    return onnxruntime


def _plain(message: str) -> str:
    return _NOISE.sub("", message.strip()).strip()


def _unknown_op(message: str) -> tuple[str, str] | None:
    """(domain, op) of an operator onnxruntime has no implementation for."""
    if found := _UNKNOWN_OP.search(message):
        return found.group(1) or "", found.group(2)
    if found := _NODE.search(message):
        return found.group(2), found.group(1)
    return None


def _explain(message: str) -> tuple[str, str]:
    """(cause, fix) of an onnxruntime load failure."""
    version = _ort().__version__
    if found := _OPSET.search(message):
        used, domain, supported = found.groups()
        return (
            f"the model uses opset {used} of {domain}; onnxruntime {version} supports up to opset {supported}",
            f"re-export the model with opset {supported} or lower (torch.onnx.export(..., opset_version={supported}), "
            f"or onnx.version_converter.convert_version(model, {supported})), or {_NEWER_RUNTIME}",
        )
    if found := _IR_VERSION.search(message):
        used, supported = found.groups()
        return (
            f"the model has IR version {used}; onnxruntime {version} reads up to IR version {supported}",
            f"save the model with ir_version {supported} (model.ir_version = {supported}), or {_NEWER_RUNTIME}",
        )
    if op := _unknown_op(message):
        domain, name = op
        custom = domain not in ("", "ai.onnx", "ai.onnx.ml")
        return (
            f"operator {domain + ':' if domain else ''}{name} is not one onnxruntime {version} implements"
            + (" (an operator of a custom domain)" if custom else ""),
            "export the model with standard ONNX operators only: the serving runtime loads no custom-op "
            "libraries (drop the exporter's custom_opsets, or replace the operator before export)",
        )
    if "External data" in message or "External initializer" in message:
        return (
            f"its external data cannot be read: {_plain(message)}",
            "keep the data files beside the .onnx file, as real files (not links to another folder), "
            "under the location the model names",
        )
    return (
        f"onnxruntime {version} reports: {_plain(message)}",
        "check that the model loads in onnxruntime (onnxruntime.InferenceSession(PATH)), or re-export it",
    )


def load_session(model_path: Path) -> Any:
    """An onnxruntime session on the CPU, created as the serving runtime creates its own."""
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # onnxruntime's own log lines would repeat the error below, less clearly
    try:
        return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind11 exception types for every load failure
        cause, fix = _explain(str(exc))
        raise MlgitError(f"onnxruntime cannot load the model: {cause}", fix, location=Location(model_path)) from None


def run_session(session: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of `session` for `inputs`; a failure raises ValueError with onnxruntime's message."""
    names = [o.name for o in session.get_outputs()]
    try:
        results = session.run(names, inputs)
    except Exception as exc:  # onnxruntime's pybind11 exceptions (InvalidArgument, Fail, ...)
        raise ValueError(_plain(str(exc))) from None
    return dict(zip(names, results, strict=True))
