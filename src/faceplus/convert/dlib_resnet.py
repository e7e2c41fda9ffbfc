"""dlib's face recognition ResNet (a ``.dat`` file) as an ONNX graph: the dlib-format parser and the graph builder.

Conversion runs once per installed weights file (cached by :mod:`faceplus.convert.cache`); the code that loads
and runs the converted model is :class:`faceplus.models.resnet_onnx.OnnxFaceEmbedder`.

dlib's serialization, as used here (``dlib/serialize.h``, ``dlib/dnn/*.h``):

- integers: one byte ``size | (0x80 if negative)`` then ``size`` little-endian magnitude bytes;
- floats/doubles: two integers, mantissa and exponent (value = mantissa * 2**exponent);
- strings: an integer length, then the bytes; bools: the ASCII character ``'0'`` or ``'1'``;
- tensors: version 2, (num_samples, k, nr, nc), then raw little-endian float32 values;
- alias tensors: version 1, (num_samples, k, nr, nc);
- ``add_loss_layer``: version 1, loss details, subnet; ``add_layer``: version 2, subnet, layer
  details, a trailer (3 bools, 3 tensors); the bottom ``add_layer`` on the input layer: version 3,
  input layer, details, 3 bools, 3 tensors, an integer; ``add_tag_layer``/``add_skip_layer``:
  version 1, subnet (their tag ids are part of the C++ type, not of the file).

So the file holds all layer versions top-down, then the input layer, then layer details
bottom-up. Tag/skip ids come from the known architecture, which is checked against the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Bump when the graph this module builds changes (the cache rebuilds the file).
CONVERTER_VERSION = "dlib-resnet-onnx-1"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
OPSET = 17


class DlibFormatError(ValueError):
    """The .dat file is not what this converter understands."""


# ------------------------------------------------------------------------------------------
# dlib's serialization


class _Reader:
    """Sequential reader of dlib's serialization primitives."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read_int(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer header {head:#x} at {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def read_float(self) -> float:
        mantissa, exponent = self.read_int(), self.read_int()
        special = {32000: np.inf, 32001: -np.inf, 32002: np.nan}
        return float(special[exponent]) if exponent in special else float(mantissa * 2.0**exponent)

    def read_str(self) -> str:
        size = self.read_int()
        text = self.data[self.pos : self.pos + size]
        self.pos += size
        return text.decode("latin-1")

    def read_bool(self) -> bool:
        char = self.data[self.pos : self.pos + 1]
        self.pos += 1
        if char not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {char!r} at {self.pos - 1}")
        return char == b"1"

    def tensor(self) -> np.ndarray:
        self.expect_version(2, "tensor")
        shape = tuple(self.read_int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return values.astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        self.expect_version(1, "alias_tensor")
        return (self.read_int(), self.read_int(), self.read_int(), self.read_int())

    def expect_version(self, expected: int, what: str) -> None:
        version = self.read_int()
        if version != expected:
            raise DlibFormatError(f"{what}: version {version}, expected {expected}")


@dataclass
class Layer:
    """One computational layer's details as serialized (``kind`` is dlib's version string)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


def _read_details(r: _Reader) -> Layer:
    kind = r.read_str()
    if kind == "con_4":
        params = r.tensor().reshape(-1)
        n, nr, nc, sy, sx, py, px = (r.read_int() for _ in range(7))
        fshape, bshape = r.alias(), r.alias()
        for _ in range(4):
            r.read_float()  # learning-rate / weight-decay multipliers
        size = int(np.prod(fshape))
        weights: np.ndarray = params[:size].reshape(fshape)  # (num_filters, k, nr, nc) == ONNX OIHW
        bias = params[size : size + int(np.prod(bshape))]
        if weights.shape[0] != n or tuple(weights.shape[2:]) != (nr, nc):
            raise DlibFormatError(f"con_4 filter shape {fshape} vs num_filters={n}, {nr}x{nc}")
        return Layer(kind, dict(weights=weights, bias=bias, stride=(sy, sx), pad=(py, px)))
    if kind == "affine_":
        params = r.tensor().reshape(-1)
        gshape, bshape = r.alias(), r.alias()
        mode = r.read_int()
        if mode != 0:
            raise DlibFormatError("only CONV_MODE affine_ layers are supported")
        size = int(np.prod(gshape))
        return Layer(kind, dict(gamma=params[:size], beta=params[size : size + int(np.prod(bshape))]))
    if kind in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
        return Layer(kind, dict(window=(nr, nc), stride=(sy, sx), pad=(py, px)))
    if kind == "fc_2":
        num_outputs, num_inputs = r.read_int(), r.read_int()
        params = r.tensor().reshape(-1)
        wshape, _bshape = r.alias(), r.alias()
        bias_mode = r.read_int()  # dlib's fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        for _ in range(4):
            r.read_float()
        fc_weights: np.ndarray = params[: int(np.prod(wshape))].reshape(num_inputs, num_outputs)
        fc_bias = params[fc_weights.size : fc_weights.size + num_outputs] if bias_mode == 0 else None
        return Layer(kind, dict(weights=fc_weights, bias=fc_bias))
    if kind in ("relu_", "add_prev_"):
        return Layer(kind)
    raise DlibFormatError(f"unsupported dlib layer {kind!r}")


@dataclass
class DlibNet:
    """A parsed dlib network: loss and input settings, and its stack bottom-up.

    ``stack`` holds a :class:`Layer` per ``add_layer`` and ``None`` per tag/skip layer.
    """

    loss: str
    input_kind: str
    means: tuple[float, float, float]
    input_size: tuple[int, int]
    stack: list[Layer | None]


def parse_dlib_net(data: bytes) -> DlibNet:
    """Parse a serialized ``loss_metric`` network over ``input_rgb_image_sized``."""
    r = _Reader(data)
    r.expect_version(1, "add_loss_layer")
    loss = r.read_str()
    if loss != "loss_metric_2":
        raise DlibFormatError(f"unsupported loss {loss!r}")
    r.read_float(), r.read_float()  # margin, distance threshold
    versions: list[int] = []
    while True:
        versions.append(r.read_int())
        if versions[-1] == 3:  # the add_layer sitting on the input layer
            break
        if versions[-1] not in (1, 2) or len(versions) > 10_000:
            raise DlibFormatError(f"unexpected layer version {versions[-1]}")
    input_kind = r.read_str()
    if input_kind != "input_rgb_image_sized":
        raise DlibFormatError(f"unsupported input layer {input_kind!r}")
    means = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_int(), r.read_int())
    stack: list[Layer | None] = []
    for version in reversed(versions):
        if version == 1:
            stack.append(None)
            continue
        stack.append(_read_details(r))
        r.read_bool(), r.read_bool(), r.read_bool()
        r.tensor(), r.tensor()
        if version == 2:
            r.tensor()
        else:
            r.tensor(), r.read_int()
    if r.pos != len(data):
        raise DlibFormatError(f"{len(data) - r.pos} trailing bytes")
    return DlibNet(loss, input_kind, means, size, stack)


# ------------------------------------------------------------------------------------------
# dnn_face_recognition_ex.cpp's anet_type, bottom-up, as a list of steps


def _block() -> list[str]:
    # block<N,BN,stride> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return ["con", "affine_", "relu_", "con", "affine_"]


def _ares() -> list[str]:
    # relu<add_prev1<block<N,BN,1,tag1<SUBNET>>>>
    return ["tag1", *_block(), "add_prev1", "relu_"]


def _ares_down() -> list[str]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>>
    return ["tag1", *_block(), "tag2", "skip1", "avg_pool_2", "add_prev2", "relu_"]


def anet_steps() -> list[str]:
    """The bottom-up layer sequence of ``anet_type`` (without the loss and input layers)."""
    steps = ["con", "affine_", "relu_", "max_pool_2"]
    steps += _ares() * 3  # alevel4
    steps += _ares_down() + _ares() * 3  # alevel3
    steps += _ares_down() + _ares() * 2  # alevel2
    steps += _ares_down() + _ares() * 2  # alevel1
    steps += _ares_down()  # alevel0
    return [*steps, "avg_pool_2", "fc_2"]


# ------------------------------------------------------------------------------------------
# ONNX graph building


def _pool_out(size: int, window: int, stride: int, pad: int) -> int:
    """dlib's (and ONNX's floor-mode) output size of a convolution or pooling."""
    return 1 + (size + 2 * pad - window) // stride


class _Graph:
    """Collects ONNX nodes while tracking each value's static NCHW shape (batch left out)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, int, int], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        self.shapes[out] = shape
        return out


def _conv(g: _Graph, x: str, con: Layer, affine: Layer | None) -> str:
    """A dlib ``con_`` (optionally with the following ``affine_`` folded into it)."""
    w, b = con.params["weights"], con.params["bias"]
    if affine is not None:
        gamma, beta = affine.params["gamma"], affine.params["beta"]
        w = (w * gamma[:, None, None, None]).astype(np.float32)
        b = (b * gamma + beta).astype(np.float32)
    (sy, sx), (py, px) = con.params["stride"], con.params["pad"]
    _, nr, nc = g.shapes[x]
    shape = (w.shape[0], _pool_out(nr, w.shape[2], sy, py), _pool_out(nc, w.shape[3], sx, px))
    return g.node(
        "Conv",
        [x, g.const("w", w), g.const("b", b)],
        shape,
        kernel_shape=list(w.shape[2:]),
        strides=[sy, sx],
        pads=[py, px, py, px],
    )


def _pool(g: _Graph, x: str, layer: Layer) -> str:
    (wr, wc), (sy, sx), (py, px) = layer.params["window"], layer.params["stride"], layer.params["pad"]
    k, nr, nc = g.shapes[x]
    if wr == 0 and wc == 0:  # avg_pool_everything / max_pool_everything
        op = "GlobalAveragePool" if layer.kind == "avg_pool_2" else "GlobalMaxPool"
        return g.node(op, [x], (k, 1, 1))
    if layer.kind == "avg_pool_2" and (py or px):
        raise DlibFormatError("padded avg_pool is not supported")  # dlib's divisor differs
    shape = (k, _pool_out(nr, wr, sy, py), _pool_out(nc, wc, sx, px))
    op = "AveragePool" if layer.kind == "avg_pool_2" else "MaxPool"
    return g.node(op, [x], shape, kernel_shape=[wr, wc], strides=[sy, sx], pads=[py, px, py, px])


def _pad_to(g: _Graph, x: str, shape: tuple[int, int, int]) -> str:
    """Zero-pad channels, rows and columns at their ends, as dlib's ``tt::add`` does."""
    extra = [t - s for t, s in zip(shape, g.shapes[x], strict=True)]
    if not any(extra):
        return x
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return g.node("Pad", [x, g.const("pads", pads)], shape)


def _add_prev(g: _Graph, x: str, other: str) -> str:
    """dlib's ``add_prev_``: the sum over the larger of both shapes, missing values being 0."""
    a, b = g.shapes[x], g.shapes[other]
    shape = (max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]))
    return g.node("Add", [_pad_to(g, x, shape), _pad_to(g, other, shape)], shape)


def build_onnx(net: DlibNet, fold_affine: bool = True) -> onnx.ModelProto:
    """The ONNX model of a parsed ``anet_type`` network (uint8 NHWC chips in, descriptors out)."""
    steps = anet_steps()
    _check_layers(net, steps)
    g = _Graph()
    x = _input(g, net)
    tags: dict[str, str] = {}
    i = 0
    while i < len(steps):
        step, layer = steps[i], net.stack[i]
        if step.startswith("tag"):
            tags[step[3:]] = x
        elif step.startswith("skip"):
            x = tags[step[4:]]
        elif step.startswith("add_prev"):
            x = _add_prev(g, x, tags[step[8:]])
        elif step == "con":
            assert layer is not None
            follow = net.stack[i + 1] if i + 1 < len(steps) else None
            if fold_affine and follow is not None and follow.kind == "affine_":
                x = _conv(g, x, layer, follow)
                i += 1
            else:
                x = _conv(g, x, layer, None)
        elif step == "affine_":
            assert layer is not None
            x = _affine(g, x, layer)
        elif step == "relu_":
            x = g.node("Relu", [x], g.shapes[x])
        elif step in ("max_pool_2", "avg_pool_2"):
            assert layer is not None
            x = _pool(g, x, layer)
        elif step == "fc_2":
            assert layer is not None
            x = _fc(g, x, layer)
        i += 1
    return _model(g, x, net.input_size)


def _check_layers(net: DlibNet, steps: list[str]) -> None:
    """Refuse a network whose layers are not those of dlib's face recognition ResNet."""
    found = ["tag/skip" if layer is None else layer.kind for layer in net.stack]
    expected = ["tag/skip" if s[:3] in ("tag", "ski") else "con_4" if s == "con" else s for s in steps]
    expected = [e if not e.startswith("add_prev") else "add_prev_" for e in expected]
    if found != expected:
        raise DlibFormatError("the file's layers do not match dlib's face recognition ResNet")


def _input(g: _Graph, net: DlibNet) -> str:
    """uint8 NHWC chips to float NCHW, less dlib's channel means, scaled by 1/256 as dlib's input layer does."""
    nr, nc = net.input_size
    x = g.node("Cast", ["chips"], (3, nr, nc), to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], (3, nr, nc), perm=[0, 3, 1, 2])
    means = np.array(net.means, dtype=np.float32).reshape(1, 3, 1, 1)
    x = g.node("Sub", [x, g.const("means", means)], (3, nr, nc))
    return g.node("Mul", [x, g.const("scale", np.array(1 / 256, dtype=np.float32))], (3, nr, nc))


def _affine(g: _Graph, x: str, layer: Layer) -> str:
    """An affine layer not folded into its convolution: per-channel gamma and beta."""
    k = g.shapes[x][0]
    gamma = layer.params["gamma"].reshape(1, k, 1, 1)
    beta = layer.params["beta"].reshape(1, k, 1, 1)
    x = g.node("Mul", [x, g.const("gamma", gamma)], g.shapes[x])
    return g.node("Add", [x, g.const("beta", beta)], g.shapes[x])


def _fc(g: _Graph, x: str, layer: Layer) -> str:
    """The final fully connected layer: flatten, matrix product, bias if any."""
    weights = layer.params["weights"]
    if weights.shape[0] != int(np.prod(g.shapes[x])):
        raise DlibFormatError("fc input size does not match the network's output")
    x = g.node("Flatten", [x], (weights.shape[1], 1, 1), axis=1)
    x = g.node("MatMul", [x, g.const("fc", weights)], (weights.shape[1], 1, 1))
    if layer.params["bias"] is not None:
        x = g.node("Add", [x, g.const("fc_bias", layer.params["bias"])], g.shapes[x])
    return x


def _model(g: _Graph, x: str, input_size: tuple[int, int]) -> onnx.ModelProto:
    """The checked ONNX model of graph ``g`` whose output is ``x``."""
    nr, nc = input_size
    g.nodes.append(helper.make_node("Identity", [x], ["descriptors"], name="descriptors"))
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_v1",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, ["N", nr, nc, 3])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", g.shapes[x][0]])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="faceplus")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def convert_dlib_resnet(dat_path: Path) -> bytes:
    """Serialized ONNX model of dlib's face recognition ResNet at ``dat_path``.

    Input ``chips``: uint8 [N, 150, 150, 3] RGB; output ``descriptors``: float32 [N, 128].
    """
    net = parse_dlib_net(Path(dat_path).read_bytes())
    serialized: bytes = build_onnx(net).SerializeToString()
    return serialized
