"""The pipeline: image -> faces (box, landmarks, aligned chip, embedding, attributes) -> compare.

Detection tries what a careful engine would before reporting that an image has no face: dlib's HOG
at the configured upsampling, then HOG one level finer, then dlib's MMOD CNN detector. A hit is kept
only if its box is at least ``min_face`` pixels wide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import numpy as np

from faceplus.calibration import Calibration, default_calibration
from faceplus.config import Settings
from faceplus.imaging import DecodedImage, ImageSource, load_image
from faceplus.models.dlib_models import DlibModels, RawDetection
from faceplus.models.resnet_onnx import OnnxFaceEmbedder
from faceplus.results import Box, Face, Match

#: Beyond this many pixels on the long side an extra HOG upsampling level costs too much to try.
_FINER_HOG_MAX_SIDE = 1200


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (NaN rows stay NaN)."""
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


class NoFaceFound(LookupError):
    """An image in which no detector found a face (raised only by calls that need one face)."""


class Engine:
    """Find faces, align them, embed them and compare them.

    >>> engine = Engine()
    >>> faces = engine.detect("photo.jpg")          # every face, largest first
    >>> match = engine.compare("a.jpg", "b.jpg")     # largest face of each
    >>> match.confidence, match.thresholds["1e-4"]
    """

    def __init__(self, settings: Settings | None = None, calibration: Calibration | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._calibration = calibration
        self.dlib = DlibModels()

    @cached_property
    def embedder(self) -> OnnxFaceEmbedder:
        """dlib's ResNet converted to ONNX (same outputs within 1e-6, ~15x faster than dlib-bin)."""
        return OnnxFaceEmbedder()

    @cached_property
    def calibration(self) -> Calibration:
        return self._calibration or default_calibration()

    @property
    def thresholds(self) -> dict[str, float]:
        return self.calibration.thresholds

    # -- intake -------------------------------------------------------------------------------
    def load(self, image: ImageSource | DecodedImage, param: str | None = None) -> DecodedImage:
        if isinstance(image, DecodedImage):
            return image
        return load_image(image, self.settings.limits, param=param)

    # -- detection ----------------------------------------------------------------------------
    def find_boxes(self, rgb: np.ndarray, min_face: int | None = None) -> list[RawDetection]:
        """Face boxes, trying finer and stronger detectors only when the default finds nothing."""
        cfg = self.settings.detection
        min_face = cfg.min_face if min_face is None else min_face

        def big_enough(hits: Iterable[RawDetection]) -> list[RawDetection]:
            return [h for h in hits if min(h.right - h.left, h.bottom - h.top) >= min_face]

        hits = big_enough(self.dlib.detect_hog(rgb, cfg.hog_upsample, cfg.hog_threshold))
        if hits or not cfg.fallback:
            return hits
        if max(rgb.shape[:2]) * 2**cfg.hog_upsample <= _FINER_HOG_MAX_SIDE:
            hits = big_enough(self.dlib.detect_hog(rgb, cfg.hog_upsample + 1, cfg.hog_threshold))
            if hits:
                return hits
        return big_enough(self.dlib.detect_mmod(rgb, 1 if max(rgb.shape[:2]) <= 400 else 0))

    def detect(
        self,
        image: ImageSource | DecodedImage,
        *,
        embed: bool = True,
        min_face: int | None = None,
        max_faces: int | None = None,
    ) -> list[Face]:
        """Every face in ``image``, largest first, with 5-point landmarks and (by default) embeddings."""
        decoded = self.load(image)
        hits = sorted(
            self.find_boxes(decoded.rgb, min_face),
            key=lambda h: (h.right - h.left) * (h.bottom - h.top),
            reverse=True,
        )
        if max_faces is not None:
            hits = hits[:max_faces]
        faces = [
            self._face(decoded.rgb, Box.from_corners(h.left, h.top, h.right, h.bottom), h.score, h.detector)
            for h in hits
        ]
        if embed:
            self.embed_faces(decoded.rgb, faces)
        return faces

    def face_at(self, image: ImageSource | DecodedImage, box: Box, *, embed: bool = True) -> Face:
        """The face inside a given rectangle, skipping detection (Face++ ``face_rectangle``)."""
        decoded = self.load(image)
        face = self._face(decoded.rgb, box, 0.0, "given")
        if embed:
            self.embed_faces(decoded.rgb, [face])
        return face

    def _face(self, rgb: np.ndarray, box: Box, score: float, detector: str) -> Face:
        return Face(
            box=box,
            score=score,
            detector=detector,
            landmarks5=self.dlib.landmarks(rgb, box.corners, 5),
            landmarks68=self.dlib.landmarks(rgb, box.corners, 68),
        )

    # -- embedding ----------------------------------------------------------------------------
    def chips(self, rgb: np.ndarray, faces: Sequence[Face], alignment: int | None = None) -> np.ndarray:
        """Aligned 150x150 chips for ``faces``, from their 68-point (default) or 5-point landmarks.

        On lfw-dev, chips aligned on all 68 points matched better than dlib's 5-point chips (see
        ``faceplus eval lfw``): the fit over 68 points is less sensitive to one misplaced point.
        """
        if not faces:
            return np.zeros((0, 150, 150, 3), np.uint8)
        alignment = alignment or self.settings.alignment
        return np.stack(
            [self.dlib.chip(rgb, f.box.corners, f.landmarks68 if alignment == 68 else f.landmarks5) for f in faces]
        )

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length embeddings of aligned chips; with flip TTA, of the mean of the chip's and its mirror's.

        dlib's descriptors vary in length; normalising them made same/different decisions more
        accurate on lfw-dev (the length carries image quality, not identity).
        """
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        if self.settings.flip_tta:
            both = self.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
            raw = (both[: len(chips)] + both[len(chips) :]) / 2
        else:
            raw = self.embedder.embed(chips)
        return normalize(raw)

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> None:
        """Fill ``face.embedding`` for each face, in one batch."""
        for face, vector in zip(faces, self.embed_chips(self.chips(rgb, faces)), strict=True):
            face.embedding = vector

    # -- comparison ---------------------------------------------------------------------------
    def main_face(self, image: ImageSource | DecodedImage, *, prefer: str = "largest", embed: bool = True) -> Face:
        """The largest face (or, with ``prefer="center"``, the one nearest the image centre)."""
        decoded = self.load(image)
        faces = self.detect(decoded, embed=False)
        if not faces:
            raise NoFaceFound("no face found in the image")
        if prefer == "center":
            cy, cx = decoded.height / 2, decoded.width / 2
            face = min(faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)
        else:
            face = faces[0]
        if embed:
            self.embed_faces(decoded.rgb, [face])
        return face

    def match(self, embedding1: np.ndarray, embedding2: np.ndarray) -> Match:
        """Compare two embeddings: Face++ confidence, the L2 distance, and the FAR thresholds."""
        distance = float(np.linalg.norm(np.asarray(embedding1) - np.asarray(embedding2)))
        return Match(float(self.calibration.confidence(distance)), distance, self.thresholds)

    def compare(self, image1: ImageSource | DecodedImage, image2: ImageSource | DecodedImage) -> Match:
        """Compare the largest face of each image."""
        face1, face2 = self.main_face(image1), self.main_face(image2)
        assert face1.embedding is not None and face2.embedding is not None
        return self.match(face1.embedding, face2.embedding)
