"""The two benchmark models, built with onnx.helper from seeded random weights (no files to ship).

MLP: [N,64] -> 512 -> 512 -> 10. CNN: [N,3,64,64], three stride-2 3x3 convolutions, global average
pooling, 10 outputs. Both have a dynamic first dimension, so every server can batch them.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _graph_model(nodes: list[Any], inputs: list[Any], outputs: list[Any], weights: list[Any]) -> onnx.ModelProto:
    model = helper.make_model(
        helper.make_graph(nodes, "bench", inputs, outputs, weights), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def mlp_model(rng: np.random.Generator) -> onnx.ModelProto:
    sizes = [64, 512, 512, 10]
    nodes, weights, current = [], [], "input"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weights += [
            numpy_helper.from_array(
                (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32), f"W{i}"
            ),
            numpy_helper.from_array(np.zeros(fan_out, dtype=np.float32), f"B{i}"),
        ]
        out = "output" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], [out if out == "output" else out + "_lin"]))
        if out != "output":
            nodes.append(helper.make_node("Relu", [out + "_lin"], [out]))
        current = out
    return _graph_model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        weights,
    )


def cnn_model(rng: np.random.Generator) -> onnx.ModelProto:
    channels = [3, 16, 32, 64]
    nodes, weights, current = [], [], "input"
    for i, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
        weights += [
            numpy_helper.from_array(
                (rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)).astype(np.float32), f"K{i}"
            ),
            numpy_helper.from_array(np.zeros(c_out, dtype=np.float32), f"KB{i}"),
        ]
        nodes += [
            helper.make_node(
                "Conv", [current, f"K{i}", f"KB{i}"], [f"c{i}"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
            ),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        current = f"r{i}"
    weights += [
        numpy_helper.from_array((rng.standard_normal((64, 10)) / 8).astype(np.float32), "FW"),
        numpy_helper.from_array(np.zeros(10, dtype=np.float32), "FB"),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [current], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "FW", "FB"], ["output"]),
    ]
    return _graph_model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        weights,
    )
