"""SFace quantized to int8 (static, QDQ): ``FACEPLUS_EMBEDDER=sface-int8``, built from the fp32 weights.

An earlier try quantized the fp32 graph as it is and lost TAR at FAR 1e-4 (99.14 -> 98.23% on lfw-dev) for a 12%
gain (docs/ENGINE.md). Three changes to the float graph before quantizing make the difference:

1. :func:`fold_batchnorm`: every ``BatchNormalization`` folded into the convolution before it (and the two around
   the final fully connected layer into that layer), so no float op sits between two 8-bit ones;
2. :func:`equalize`: each channel's expected reach (from its normalisation's ``beta`` and ``gamma``, no data) and
   the weights reading it meet halfway across the ``PRelu`` (cross-layer equalization): one wide channel no
   longer leaves a whole layer's 256 steps to the others;
3. :func:`split_prelu`: ``PRelu`` as ``x + Relu((s - 1) * x)``, a depthwise convolution and an ``Add`` that stay
   8-bit (onnxruntime quantizes no ``PRelu``).

Then int8 weights per output channel, uint8 activations, with activation ranges measured once on fairface-dev
faces (CC BY 4.0; never lfw-dev, never UTKFace) aligned as the engine aligns them, by ``benchmarks/sface_variants.py
--write-ranges``, shipped as ``faceplus/data/sface_int8_ranges.json``: the int8 model is rebuilt at first use from
the packaged weights and those ranges alone, and the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

from faceplus.convert.int8 import quantize_with_ranges
from faceplus.convert.sface import (
    INPUT,
    depthwise_1x1,
    fold_dequantize,
    node_attribute,
    replace_prelu,
    strip_unused_inputs,
)

#: Bump when the recipe below changes (the cache key includes it, with the ranges file's hash).
QUANTIZER_VERSION = "sface-int8-2"
RANGES_FILE = "sface_int8_ranges.json"


def _bn_affine(node: onnx.NodeProto, constants: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A ``BatchNormalization`` (inference) as ``x * scale + shift`` per channel, in float64."""
    gamma, beta, mean, var = (constants[x].astype(np.float64) for x in node.input[1:5])
    scale = gamma / np.sqrt(var + node_attribute(node, "epsilon", 1e-5))
    return scale, beta - mean * scale


def fold_batchnorm(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every ``BatchNormalization`` folded into the weights next to it; ``Dropout`` (inference: identity) removed.

    - after a ``Conv`` or the final ``Gemm`` (their only reader): weights scaled per output channel, bias
      ``(b - mean) * s + beta``;
    - before ``Dropout -> Flatten -> Gemm``: the per-channel affine map moves into the ``Gemm``'s columns and bias.

    The arithmetic is done in float64 and rounded once to float32, so the folded graph computes the same
    function up to float32 rounding (tests/engine/test_sface_int8.py measures it).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    producer, readers = _links(graph)
    changed: set[str] = set()
    rename: dict[str, str] = {}
    for node in graph.node:
        if node.op_type not in ("Dropout", "BatchNormalization"):
            continue
        rename[node.output[0]] = node.input[0]
        if node.op_type == "BatchNormalization":
            scale, shift = _bn_affine(node, constants)
            source = producer.get(node.input[0])
            if source is not None and source.op_type in ("Conv", "Gemm") and len(readers[node.input[0]]) == 1:
                changed |= _fold_after(source, scale, shift, constants)
            else:
                changed |= _fold_before_gemm(node, scale, shift, readers, constants)
    nodes = [n for n in graph.node if n.output[0] not in rename]
    for node in nodes:
        node.input[:] = [_resolve(x, rename) for x in node.input]
    for out in graph.output:  # a graph output a removed node wrote is now written by the node folded into
        for node in nodes:
            node.output[:] = [out.name if _resolve(out.name, rename) == x else x for x in node.output]
    read = {x for n in nodes for x in n.input}
    initializers = [
        numpy_helper.from_array(constants[t.name].astype(np.float32), t.name) if t.name in changed else t
        for t in graph.initializer
        if t.name in read
    ]
    known = {t.name for t in initializers}
    initializers += [
        numpy_helper.from_array(constants[name].astype(np.float32), name) for name in sorted(changed - known)
    ]
    del graph.node[:]
    graph.node.extend(n for n in nodes if n.op_type != "Constant" or n.output[0] in read)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.value_info[:]
    return model


def _fold_after(
    source: onnx.NodeProto, scale: np.ndarray, shift: np.ndarray, constants: dict[str, np.ndarray]
) -> set[str]:
    """Fold ``x * scale + shift`` per output channel into the ``Conv`` or ``Gemm`` (x @ W.T + b) before it
    (a ``Conv`` without a bias gets one)."""
    if source.op_type == "Gemm" and (len(source.input) < 3 or node_attribute(source, "transB", 0) != 1):
        raise ValueError(f"cannot fold a normalisation into {source.name}: it is not x @ W.T + b")
    if len(source.input) < 3:
        source.input.append(f"{source.output[0]}_bias")
        constants[source.input[2]] = np.zeros(len(scale))
    weight, bias = source.input[1], source.input[2]
    w = constants[weight]
    constants[weight] = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    constants[bias] = constants[bias] * scale + shift
    return {weight, bias}


def _fold_before_gemm(
    node: onnx.NodeProto,
    scale: np.ndarray,
    shift: np.ndarray,
    readers: Mapping[str, list[onnx.NodeProto]],
    constants: dict[str, np.ndarray],
) -> set[str]:
    """Fold a per-channel ``x * scale + shift`` into the ``Gemm`` that reads it flattened."""
    gemm = _gemm_after_flatten(node.output[0], readers)
    if gemm is None:
        raise ValueError(f"cannot fold {node.name}: no Conv or Gemm next to it")
    weight, bias = gemm.input[1], gemm.input[2]
    w = constants[weight]  # [out, channels * positions] (transB=1)
    positions = w.shape[1] // len(scale)
    constants[bias] = constants[bias] + w @ np.repeat(shift, positions)
    constants[weight] = w * np.repeat(scale, positions)[None, :]
    return {weight, bias}


def _links(graph: onnx.GraphProto) -> tuple[dict[str, onnx.NodeProto], dict[str, list[onnx.NodeProto]]]:
    """Each tensor's producing node, and the nodes reading it."""
    producer = {out: n for n in graph.node for out in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for x in node.input:
            readers.setdefault(x, []).append(node)
    return producer, readers


def _resolve(name: str, rename: Mapping[str, str]) -> str:
    while name in rename:
        name = rename[name]
    return name


def _gemm_after_flatten(tensor: str, readers: Mapping[str, list[onnx.NodeProto]]) -> onnx.NodeProto | None:
    """The ``Gemm`` that reads ``tensor`` through ``Dropout`` and ``Flatten`` only (each its only reader)."""
    while len(readers.get(tensor, [])) == 1:
        (node,) = readers[tensor]
        if node.op_type == "Gemm" and node.input[0] == tensor:
            return node if node_attribute(node, "transB", 0) == 1 and len(node.input) == 3 else None
        if node.op_type not in ("Dropout", "Flatten"):
            return None
        tensor = node.output[0]
    return None


def expected_ranges(model: onnx.ModelProto, spread: float = 3.0) -> dict[str, np.ndarray]:
    """Each ``Conv -> BatchNormalization`` output's expected per-channel extent, ``|beta| + spread * |gamma|``.

    A normalisation's output has mean ``beta`` and standard deviation ``gamma`` per channel, so this predicts how
    far each channel reaches without running any image (data-free quantization, Nagel et al. 2019). Keyed by the
    ``Conv``'s output name.
    """
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {out: n for n in model.graph.node for out in n.output}
    out: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        source = producer.get(node.input[0]) if node.op_type == "BatchNormalization" else None
        if source is not None and source.op_type == "Conv":
            gamma, beta = (constants[x].astype(np.float64) for x in node.input[1:3])
            out[source.output[0]] = np.abs(beta) + spread * np.abs(gamma)
    return out


def equalize(model: onnx.ModelProto, ranges: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """Channel extents balanced across every ``Conv -> PRelu -> Conv`` (and ``Conv -> PRelu -> Flatten -> Gemm``).

    ``PRelu`` with a per-channel slope commutes with a positive per-channel scale, so dividing channel ``c`` of
    the first convolution by ``s_c`` and multiplying the weights that read it by ``s_c`` computes the same
    function. Per-tensor 8-bit activations lose the channels that are small next to their layer's widest one;
    with ``s_c = sqrt(extent_c / reach_c)`` (``reach_c``: the largest weight reading channel ``c``) activation and
    weight extents meet halfway (cross-layer equalization). Before the final fully connected layer (which reads
    them flattened, one column per channel and position) all channels are made equally wide. ``ranges``:
    :func:`expected_ranges` of the graph before its normalisations were folded.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    producer, readers = _links(graph)
    changed: set[str] = set()
    for node in graph.node:
        first = producer.get(node.input[0]) if node.op_type == "PRelu" else None
        if first is None or first.op_type != "Conv" or first.output[0] not in ranges:
            continue
        (second,) = readers[node.output[0]]
        extent = ranges[first.output[0]]
        reader = second if second.op_type == "Conv" else _gemm_after_flatten(node.output[0], readers)
        if reader is None:
            continue
        if reader.op_type == "Conv":
            w = constants[second.input[1]]
            depthwise = int(node_attribute(second, "group", 1)) == w.shape[0] and w.shape[1] == 1
            reach = np.abs(w).reshape(w.shape[0], -1).max(1) if depthwise else np.abs(w).max(axis=(0, 2, 3))
            scale = np.sqrt(np.maximum(extent, 1e-8) / np.maximum(reach, 1e-8))
            shape = (-1, 1, 1, 1) if depthwise else (1, -1, 1, 1)
            constants[second.input[1]] = w * scale.reshape(shape)
        else:
            scale = np.maximum(extent, 1e-8) / np.mean(extent)
            w = constants[reader.input[1]]
            constants[reader.input[1]] = w * np.repeat(scale, w.shape[1] // len(scale))[None, :]
        constants[first.input[1]] = constants[first.input[1]] / scale.reshape(-1, 1, 1, 1)
        constants[first.input[2]] = constants[first.input[2]] / scale
        changed |= {first.input[1], first.input[2], reader.input[1]}
    initializers = [
        numpy_helper.from_array(constants[t.name].astype(np.float32), t.name) if t.name in changed else t
        for t in graph.initializer
    ]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return model


def _x_plus_relu(x: str, y: str, name: str, slope: np.ndarray) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``x + Relu((s - 1) * x)`` where every slope is below 1, else ``x + (1 - s) * Relu(-x)``
    (:func:`split_prelu`)."""
    slope = slope.astype(np.float64)
    channels = len(slope)
    if (slope < 1).all():
        constants = [numpy_helper.from_array((slope - 1).astype(np.float32).reshape(-1, 1, 1, 1), f"{name}_s1")]
        nodes = [
            depthwise_1x1(x, f"{name}_s1", f"{name}_scaled", channels, f"{name}_scale"),
            helper.make_node("Relu", [f"{name}_scaled"], [f"{name}_negative"], name=f"{name}_relu"),
        ]
    else:
        constants = [
            numpy_helper.from_array(np.full((channels, 1, 1, 1), -1.0, np.float32), f"{name}_minus_one"),
            numpy_helper.from_array((1 - slope).astype(np.float32).reshape(-1, 1, 1, 1), f"{name}_1s"),
        ]
        nodes = [
            depthwise_1x1(x, f"{name}_minus_one", f"{name}_flipped", channels, f"{name}_flip"),
            helper.make_node("Relu", [f"{name}_flipped"], [f"{name}_relu_flipped"], name=f"{name}_relu"),
            depthwise_1x1(f"{name}_relu_flipped", f"{name}_1s", f"{name}_negative", channels, f"{name}_scale"),
        ]
    return [*nodes, helper.make_node("Add", [x, f"{name}_negative"], [y], name=f"{name}_add")], constants


def split_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every per-channel ``PRelu(x, s)`` spelled ``x + Relu((s - 1) * x)`` (one 1x1 depthwise ``Conv``, its ``Relu``
    and an ``Add``): ops that all stay 8-bit, with no float op between them.

    ``PRelu(x) = x + (1 - s) * Relu(-x)``, and for ``s < 1`` that is ``x + Relu((s - 1) * x)``, whose ``Relu`` the
    quantizer folds into the convolution's output range. A layer with a slope >= 1 (3 of SFace's 10,944 channels)
    takes ``x + (1 - s) * Relu(-x)`` with two depthwise convolutions. (The fp32 graph's own spelling,
    :func:`faceplus.convert.sface.split_prelu`, keeps a ``Relu`` of ``x`` that int8 would run in float between a
    dequantize and a quantize: ~3 ms a face.)
    """
    return replace_prelu(model, _x_plus_relu)


def float_graph(path: Path, balance: bool = True) -> onnx.ModelProto:
    """The fp32 graph the quantizer reads: SFace's weights, normalisations folded, channels equalized,
    ``PRelu`` split."""
    model = fold_dequantize(strip_unused_inputs(onnx.load(str(path))))
    folded = fold_batchnorm(model)
    if balance:
        folded = equalize(folded, expected_ranges(model))
    model = split_prelu(folded)
    model.producer_name = "faceplus"
    model.producer_version = QUANTIZER_VERSION
    onnx.checker.check_model(model)
    return model


def shipped_ranges() -> dict[str, tuple[float, float]]:
    """The activation ranges shipped in ``faceplus.data`` (tensor name -> (min, max))."""
    data = json.loads(resources.files("faceplus.data").joinpath(RANGES_FILE).read_text())
    return {name: (float(lo), float(hi)) for name, (lo, hi) in data["ranges"].items()}


class _ChipReader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no types
    """Aligned 112 px RGB chips as the network's NCHW float input, in batches."""

    def __init__(self, chips: np.ndarray, batch: int) -> None:
        self._batches: Iterator[np.ndarray] = (
            np.ascontiguousarray(chips[i : i + batch].transpose(0, 3, 1, 2), dtype=np.float32)
            for i in range(0, len(chips), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT: batch}


def activation_ranges(
    model: onnx.ModelProto, chips: np.ndarray, method: str = "percentile", percentile: float = 99.99, batch: int = 16
) -> dict[str, tuple[float, float]]:
    """The range of every float tensor of ``model`` (:func:`float_graph`) over ``chips`` (uint8 [N, 112, 112, 3]).

    ``method``: ``minmax`` (the extremes seen), ``percentile`` (the symmetric ``percentile`` of |x|: one outlier
    pixel no longer stretches a whole layer's 256 steps; what ships) or ``entropy`` (onnxruntime's KL fit).
    """
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    extra = {"percentile": percentile} if method == "percentile" else {}
    with tempfile.TemporaryDirectory(prefix="faceplus-sface-int8-") as tmp:
        source = Path(tmp) / "float.onnx"
        onnx.save(model, str(source))
        calibrator = create_calibrator(
            source,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=methods[method],
            providers=["CPUExecutionProvider"],
            extra_options=extra,
        )
        for start in range(0, len(chips), batch):  # one batch at a time: histograms merge, tensors are freed
            calibrator.collect_data(_ChipReader(chips[start : start + batch], batch))
        found = calibrator.compute_data()
    return {name: (float(np.min(t.range_value[0])), float(np.max(t.range_value[1]))) for name, t in found.data.items()}


def quantize(
    model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]], keep_float: Sequence[str] = ()
) -> bytes:
    """The serialized int8 QDQ model of ``model`` with activation ``ranges`` (no images needed).

    Weights int8 per output channel, activations uint8 (the u8 x s8 kernels onnxruntime runs fastest on x86).
    Nodes whose op type is in ``keep_float`` stay in float. By default none does: quantizing the final fully
    connected layer as well left lfw-dev's figures as they were (TAR at FAR 1e-4 99.20% either way, median L2 to
    fp32 0.151) and took a face from 9.7 to 7.3 ms (benchmarks/sface_variants.py, docs/ENGINE.md).
    """
    with tempfile.TemporaryDirectory(prefix="faceplus-sface-int8-") as tmp:
        source, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(source))
        quantize_with_ranges(source, out, ranges, [n.name for n in model.graph.node if n.op_type in keep_float])
        return out.read_bytes()


def quantize_sface(path: Path) -> bytes:
    """The int8 model of the shipped SFace file at ``path`` with the shipped ranges (deterministic)."""
    return quantize(float_graph(path), shipped_ranges())
