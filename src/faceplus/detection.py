"""Face detection as a chain: the primary detector, then stronger or finer ones only when it finds nothing.

Detectors (chosen by measurement, see docs/DETECTORS.md and ``benchmarks/detectors.py``):
- ``blazeface``: MediaPipe BlazeFace full range on onnxruntime, ~4 ms a photo. Its boxes are mapped to
  dlib's box convention (measured on lfw-dev) so that dlib's landmark predictors see what they were
  trained on.
- ``hog1``/``hog2``: dlib's HOG at upsampling 1 and 2 (~25 ms and ~100 ms on a 250x250 photo).
- ``mmod``: dlib's CNN (slow: seconds on a large photo), the last resort.
A hit is kept only if its box is at least ``min_face`` pixels on its short side.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import cv2
import numpy as np

from faceplus.config import DetectionSettings
from faceplus.models.dlib_models import DlibModels, RawDetection
from faceplus.results import Box

#: Beyond this many pixels on the long side an extra HOG upsampling level costs too much to try.
_FINER_HOG_MAX_SIDE = 1200

#: BlazeFace box -> dlib (HOG-style) box, as fractions of the BlazeFace box: left/top shift, width/height
#: scale. Mean over lfw-dev faces found by both (HOG boxes are slightly smaller and lower).
_BLAZE_TO_DLIB = (0.0, 0.015, 0.96, 0.956)

DETECTORS = ("blazeface", "hog")

#: Face width (px) at which HOG (upsampling 0, 80 px window) re-boxes a BlazeFace face, and the overlap
#: its box must have with BlazeFace's to count as the same face.
_HOG_FACE_PX = 130.0
_HOG_CONFIRM_IOU = 0.4


class DetectorChain:
    """Runs the configured detector, falling back to the others where it finds no face."""

    def __init__(self, settings: DetectionSettings, dlib: DlibModels) -> None:
        if settings.detector not in DETECTORS:
            raise ValueError(f"unknown detector {settings.detector!r}; choose one of {DETECTORS}")
        self.settings = settings
        self.dlib = dlib

    @cached_property
    def _blazeface(self):
        from faceplus.models.blazeface import BlazeFaceDetector

        return BlazeFaceDetector("full", score_threshold=self.settings.blazeface_threshold)

    def blazeface(self, rgb: np.ndarray) -> list[RawDetection]:
        """BlazeFace's faces, each boxed the way dlib's HOG boxes it where HOG confirms it (see :meth:`hog_box`)."""
        dx, dy, sw, sh = _BLAZE_TO_DLIB
        hits = []
        for det in self._blazeface.detect(rgb):
            x, y, w, h = det.box
            left, top = x + dx * w, y + dy * h
            mapped = RawDetection(left, top, left + sw * w, top + sh * h, float(det.score), "blazeface-box")
            hits.append(self.hog_box(rgb, mapped) or mapped)
        return hits

    def hog_box(self, rgb: np.ndarray, hit: RawDetection) -> RawDetection | None:
        """HOG's own box for a face found by another detector, from a small crop around it.

        dlib's landmark predictors were trained on HOG boxes, and chips aligned from them match best
        (lfw-dev 99.0% against 98.8% from mapped BlazeFace boxes). The crop is scaled so the face is
        ~100 px wide, so this costs a few milliseconds whatever the photo's size.
        """
        side = hit.right - hit.left
        scale = _HOG_FACE_PX / max(side, 1.0)
        cx, cy = (hit.left + hit.right) / 2, (hit.top + hit.bottom) / 2
        half = side  # the crop is twice the face's side
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(rgb.shape[1], int(cx + half)), min(rgb.shape[0], int(cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = cv2.resize(
            rgb[y0:y1, x0:x1],
            (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        best, best_iou = None, _HOG_CONFIRM_IOU
        target = Box.from_corners(hit.left, hit.top, hit.right, hit.bottom)
        for h in self.dlib.detect_hog(np.ascontiguousarray(crop), 0, self.settings.hog_threshold):
            box = Box.from_corners(x0 + h.left / scale, y0 + h.top / scale, x0 + h.right / scale, y0 + h.bottom / scale)
            iou = box.iou(target)
            if iou > best_iou:
                best, best_iou = box, iou
        if best is None:
            return None
        return RawDetection(best.left, best.top, best.right, best.bottom, hit.score, "blazeface")

    def hog(self, rgb: np.ndarray, upsample: int) -> list[RawDetection]:
        return self.dlib.detect_hog(rgb, upsample, self.settings.hog_threshold)

    def mmod(self, rgb: np.ndarray) -> list[RawDetection]:
        return self.dlib.detect_mmod(rgb, 1 if max(rgb.shape[:2]) <= 400 else 0)

    def steps(self, rgb: np.ndarray) -> list[Callable[[], list[RawDetection]]]:
        up = self.settings.hog_upsample
        hog = [lambda: self.hog(rgb, up)]
        if max(rgb.shape[:2]) * 2 ** (up + 1) <= _FINER_HOG_MAX_SIDE:
            hog.append(lambda: self.hog(rgb, up + 1))
        blaze = [lambda: self.blazeface(rgb)]
        first = blaze + hog if self.settings.detector == "blazeface" else hog + blaze
        return [*first, lambda: self.mmod(rgb)]

    def find(self, rgb: np.ndarray, min_face: int | None = None) -> list[RawDetection]:
        """Face boxes from the first detector in the chain that finds any big enough."""
        min_face = self.settings.min_face if min_face is None else min_face
        steps = self.steps(rgb)
        for step in steps if self.settings.fallback else steps[:1]:
            hits = [h for h in step() if min(h.right - h.left, h.bottom - h.top) >= min_face]
            if hits:
                return hits
        return []
