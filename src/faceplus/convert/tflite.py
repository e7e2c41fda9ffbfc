"""MediaPipe's .tflite face models as ONNX: ``tflite2onnx`` plus one graph fix, run once per file (cached)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: Must equal :data:`faceplus.models.tflite_onnx.CONVERTER` (a test checks).
CONVERTER = "tflite2onnx-0.4.1+prelu-split-1"


def split_prelu(model: onnx.ModelProto) -> int:
    """Rewrite PRelu with a constant slope ``a`` as ``a*x + (1-a)*relu(x)``; returns the count.

    onnxruntime's CPU PRelu with a per-channel slope is slow (2.9 of the mesh model's 4 ms, 1 thread);
    Relu/Mul/Add keep it at ~1.3 ms, on par with TFLite's XNNPACK. The slopes lie outside [0, 1],
    so ``max(x, a*x)`` would be wrong.
    """
    inits = {t.name: t for t in model.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in model.graph.node:
        if node.op_type != "PRelu" or node.input[1] not in inits:
            nodes.append(node)
            continue
        x, slope, y = node.input[0], node.input[1], node.output[0]
        a = numpy_helper.to_array(inits[slope]).astype(np.float32)
        one_minus = f"{y}__one_minus_slope"
        model.graph.initializer.append(numpy_helper.from_array(1.0 - a, one_minus))
        nodes += [
            helper.make_node("Relu", [x], [f"{y}__relu"]),
            helper.make_node("Mul", [f"{y}__relu", one_minus], [f"{y}__pos"]),
            helper.make_node("Mul", [x, slope], [f"{y}__lin"]),
            helper.make_node("Add", [f"{y}__lin", f"{y}__pos"], [y]),
        ]
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def convert_tflite(source: Path) -> bytes:
    """Serialized ONNX of a .tflite file: tflite2onnx's output with PReLU split for onnxruntime."""
    import tflite2onnx  # imported lazily: only needed on a cache miss

    # tflite2onnx warns about every float16 weight tensor (they are dequantised correctly).
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        tflite2onnx.convert(str(source), str(out))
        model = onnx.load(out)
    split_prelu(model)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
