"""Tiny real ONNX models built with onnx.helper, for tests that need a model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_linear_model(path: Path, batch: str | int = "batch", opset: int = 17, scale: float = 1.0) -> Path:
    """x[batch, 4] FP32 -> y[batch, 3] FP32 = x @ W with fixed weights (times `scale`: a "retrained" model)."""
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10 * scale, "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


FUTURE_OPSET = onnx.defs.onnx_opset_version() + 20  # beyond what any installed onnxruntime supports


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: tuple[onnx.TensorProto, ...] = (),
    opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    imports = [helper.make_opsetid(domain, version) for domain, version in (opsets or {"": 17}).items()]
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 9
    return model


def write_custom_op_model(path: Path) -> Path:
    """The linear model's signature (x[batch, 4] -> y[batch, 3]) computed by one node of a custom domain
    (com.acme:Frobnicate) that onnxruntime has no kernel for."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.acme")
    onnx.save(_model([node], [x], [y], opsets={"": 17, "com.acme": 1}), str(path))
    return path


def write_external_data_model(path: Path, location: str = "model.onnx.data") -> Path:
    """The linear model (x[batch, 4] @ W -> y[batch, 3]) with W saved as external data at `location`
    (relative to the model's folder), as exporters do for models over 2 GB."""
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "W")
    model = _model(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        (weights,),
    )
    (path.parent / location).parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)  # fmt: skip
    return path


def write_shapeless_model(path: Path) -> Path:
    """y = relu(x) + 1 where the graph says nothing of x's shape (not even its rank), as hand-built graphs do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    model = _model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "one"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        (one,),
    )
    onnx.save(model, str(path))
    return path
