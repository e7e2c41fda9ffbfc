"""dlib's detectors, shape predictors and ResNet embedder (weights from face-recognition-models).

Boxes come back as plain ``(left, top, right, bottom)`` tuples in image pixels and landmarks as
numpy arrays, so no dlib object leaks past this module.
"""

from __future__ import annotations

from functools import cached_property

import dlib
import numpy as np

from faceplus.models.bundled import dlib_model
from faceplus.results import BoxStyle, Detection


def _rect(box: tuple[float, float, float, float]) -> dlib.rectangle:
    left, top, right, bottom = (round(v) for v in box)
    return dlib.rectangle(left, top, right, bottom)


class DlibModels:
    """Lazily loaded dlib models; each one is built once per instance and is read-only afterwards."""

    @cached_property
    def hog(self) -> dlib.fhog_object_detector:
        return dlib.get_frontal_face_detector()

    @cached_property
    def mmod(self) -> dlib.cnn_face_detection_model_v1:
        return dlib.cnn_face_detection_model_v1(str(dlib_model("mmod_human_face_detector.dat")))

    @cached_property
    def predictor5(self) -> dlib.shape_predictor:
        return dlib.shape_predictor(str(dlib_model("shape_predictor_5_face_landmarks.dat")))

    @cached_property
    def predictor68(self) -> dlib.shape_predictor:
        return dlib.shape_predictor(str(dlib_model("shape_predictor_68_face_landmarks.dat")))

    @cached_property
    def resnet(self) -> dlib.face_recognition_model_v1:
        return dlib.face_recognition_model_v1(str(dlib_model("dlib_face_recognition_resnet_model_v1.dat")))

    def detect_hog(self, rgb: np.ndarray, upsample: int, threshold: float) -> list[Detection]:
        rects, scores, _ = self.hog.run(rgb, upsample, threshold)
        return [
            Detection(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s), f"hog{upsample}", BoxStyle.HOG)
            for r, s in zip(rects, scores, strict=True)
        ]

    def detect_mmod(self, rgb: np.ndarray, upsample: int = 0) -> list[Detection]:
        hits = self.mmod(rgb, upsample)
        return [
            Detection(
                h.rect.left(),
                h.rect.top(),
                h.rect.right() + 1,
                h.rect.bottom() + 1,
                float(h.confidence),
                "mmod",
                BoxStyle.FOREIGN,
            )
            for h in hits
        ]

    def landmarks(self, rgb: np.ndarray, box: tuple[float, float, float, float], points: int = 5) -> np.ndarray:
        predictor = self.predictor5 if points == 5 else self.predictor68
        shape = predictor(rgb, _rect(box))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32).reshape(-1, 2)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """128-d descriptors for aligned chips [N,150,150,3] uint8 (dlib's own, reference implementation)."""
        chips = np.ascontiguousarray(chips, dtype=np.uint8)
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        out = self.resnet.compute_face_descriptor([c for c in chips])
        return np.array([np.array(d) for d in out], dtype=np.float32)
