"""One pass through the engine: what a caller asks of an image (:class:`FaceRequest`) and what comes back
(:class:`ImageFaces`), in the manner of insightface's ``FaceAnalysis.get``.

:func:`analyze_image` (:meth:`faceplus.engine.Engine.analyze_image`) composes the engine's steps: detection (or a
given box, or the face of a kept crop), the smallest face kept, embedding, landmarks, attributes and dense landmarks
of the largest few, and the analysis crops; the caller (each engine job: detect, analyze, dense) builds one request
and reads one result instead of stepping through the engine itself.

The smallest face is a rule about pixels: a square whose side is the larger of a fixed number of pixels and a
fraction (1/``divisor``) of the image's shorter side (Face++ documents 1/48 and never under 48 px: a 4096x3200
photo gives 66 px; the server's values come from its settings, ``DETECT_MIN_FACE``). A given box is the caller's
choice and is kept whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from faceplus.attributes import expression
from faceplus.attributes.analyzer import FaceAnalyzer
from faceplus.attributes.dense_landmarks import dense_landmarks
from faceplus.crops import emotion_canvas, emotion_leaves_image, make_crop, open_crop
from faceplus.errors import BadArgument
from faceplus.imaging import DecodedImage, ImageSource
from faceplus.results import Box, Face, FaceCrop


def min_face_side(min_face: int, divisor: int, width: int, height: int) -> int:
    """The smallest face side (pixels) kept in a ``width`` x ``height`` image: at least ``min_face`` px and
    1/``divisor`` of the shorter side (``divisor`` 0: no fraction; 0 overall: no minimum)."""
    by_image = min(width, height) // divisor if divisor > 0 else 0
    return max(min_face, by_image, 0)


def big_enough(box: Box | dict[str, int], minimum: int) -> bool:
    """Whether a face box (a :class:`Box` or Face++'s ``face_rectangle``) is at least ``minimum`` on its short side."""
    width, height = (box["width"], box["height"]) if isinstance(box, dict) else (box.width, box.height)
    return min(width, height) >= minimum


@dataclass(frozen=True)
class FaceRequest:
    """What one pass through the engine computes for an image."""

    #: The form field the image came from (an undecodable image's error names it); None: unnamed.
    param: str | None = None
    #: A box to use instead of detecting, kept whatever its size.
    rectangle: Box | None = None
    #: The name of ``rectangle`` in errors (a box reaching outside the image is ``BadArgument`` with it).
    rectangle_param: str = "face_rectangle"
    #: Whether ``rectangle`` must lie inside the image: a caller's box must; a stored face's box (found by
    #: detection, which may reach past the image's edge) is taken as it is.
    rectangle_inside: bool = True
    #: The image is a kept face crop placed by this metadata (:func:`faceplus.crops.open_crop`): its one face is
    #: the crop's, nothing is detected, and coordinates are the crop's.
    crop_meta: dict[str, Any] | None = None
    #: Only the largest this many detected faces are kept (before the minimum face); None: all.
    max_faces: int | None = None
    #: The smallest detected face kept: (pixels, divisor of the shorter side), see :func:`min_face_side`.
    min_face: tuple[int, int] = (0, 0)
    #: Whether each kept face gets its identity embedding.
    embed: bool = True
    #: Named landmarks of the described faces: 0 (none), 1 (83 points) or 2 (106 points).
    landmark: int = 0
    #: The attribute names measured on the described faces.
    attributes: tuple[str, ...] = ()
    #: How many of the largest kept faces get ``landmark`` and ``attributes``; None: all of them.
    describe_first: int | None = None
    #: The dense landmark parts (Face++ thousandlandmark) of the described faces; None: no dense landmarks.
    dense: tuple[str, ...] | None = None
    #: Whether each kept face's analysis region comes back (:func:`faceplus.crops.make_crop`).
    crops: bool = False


@dataclass
class AnalyzedFace:
    """One kept face: the engine's :class:`Face` (box, embedding, and the landmarks and attributes where it was
    described), whether it was described, its dense landmarks and its analysis crop where they were asked for."""

    face: Face
    described: bool = False
    dense: dict[str, Any] | None = None
    crop: FaceCrop | None = None


@dataclass
class ImageFaces:
    """The faces one pass kept (largest first, or the given box's), how many detected faces it left out as smaller
    than ``min_face``, and that minimum in pixels (0 for a given box or no minimum)."""

    faces: list[AnalyzedFace]
    left_out: int = 0
    min_face: int = 0


class FaceSteps(Protocol):
    """The engine's steps one pass composes (:class:`faceplus.engine.Engine` has them)."""

    def load(self, image: ImageSource | DecodedImage, param: str | None = None) -> DecodedImage: ...

    @property
    def analyzer(self) -> FaceAnalyzer: ...

    def detect(
        self, image: ImageSource | DecodedImage, *, embed: bool = True, max_faces: int | None = None
    ) -> list[Face]: ...

    def face_at(self, image: ImageSource | DecodedImage, box: Box, *, embed: bool = True) -> Face: ...

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> None: ...

    def analyze(
        self, image: ImageSource | DecodedImage, faces: Sequence[Face], attributes: Sequence[str], landmark: int = 0
    ) -> None: ...


def analyze_image(engine: FaceSteps, image: ImageSource | DecodedImage, request: FaceRequest) -> ImageFaces:
    """One pass over ``image`` for everything ``request`` asks: the faces (detected and at least the minimum size,
    the given box, or a kept crop's face), their embeddings, the landmarks, attributes and dense landmarks of the
    largest ``describe_first``, and their analysis crops.

    A given box reaching outside the image raises :class:`~faceplus.errors.BadArgument` naming
    ``request.rectangle_param``; an undecodable image names ``request.param``.
    """
    if request.crop_meta is not None:
        if not isinstance(image, bytes):
            raise TypeError("a kept face crop is passed as its encoded bytes")
        decoded, face = open_crop(image, request.crop_meta)
        result = ImageFaces([AnalyzedFace(face)])
    else:
        decoded = engine.load(image, param=request.param)
        if request.rectangle is not None:
            result = ImageFaces([AnalyzedFace(_given_face(engine, decoded, request.rectangle, request))])
        else:
            result = _kept_faces(engine, decoded, request)
    first = request.describe_first
    for i, analyzed in enumerate(result.faces):
        if first is None or i < first:
            _describe(engine, decoded, analyzed, request)
        if request.crops:
            analyzed.crop = make_crop(decoded, analyzed.face)
    return result


def _given_face(engine: FaceSteps, decoded: DecodedImage, box: Box, request: FaceRequest) -> Face:
    """The face at the request's own box, which must lie inside the image (unless the request says otherwise)."""
    if request.rectangle_inside and (box.right > decoded.width or box.bottom > decoded.height):
        raise BadArgument("face_rectangle reaches outside the image", param=request.rectangle_param)
    return engine.face_at(decoded, box, embed=request.embed)


def _kept_faces(engine: FaceSteps, decoded: DecodedImage, request: FaceRequest) -> ImageFaces:
    """The detected faces (the largest ``max_faces``) at least the request's minimum size (embedded if asked), and
    how many were not."""
    minimum = min_face_side(*request.min_face, decoded.width, decoded.height)
    detected = engine.detect(decoded, embed=False, max_faces=request.max_faces)
    faces = [face for face in detected if big_enough(face.box, minimum)]
    if faces and request.embed:
        engine.embed_faces(decoded.rgb, faces)
    return ImageFaces([AnalyzedFace(face) for face in faces], len(detected) - len(faces), minimum)


def _describe(engine: FaceSteps, decoded: DecodedImage, analyzed: AnalyzedFace, request: FaceRequest) -> None:
    """The request's landmarks, attributes and dense landmarks of one face."""
    engine.analyze(decoded, [analyzed.face], request.attributes, request.landmark)
    if request.crop_meta is not None:
        _emotion_past_crop_edge(engine.analyzer, decoded, analyzed.face, request)
    if request.dense is not None:
        mesh = engine.analyzer.mesh468(decoded.rgb, analyzed.face)
        eyes = engine.analyzer.iris_model.eyes(decoded.rgb, mesh)
        analyzed.dense = dense_landmarks(mesh, eyes, list(request.dense))
    analyzed.described = True


def _emotion_past_crop_edge(analyzer: FaceAnalyzer, crop: DecodedImage, face: Face, request: FaceRequest) -> None:
    """Smile and emotion of a kept crop's face measured again where fer's emotion crop reaches past the image's
    edge: there it reads the whole image's padding value, so it runs on a canvas that has it, and the same model
    gives on the crop what it gave on the image."""
    meta = request.crop_meta
    wanted = {"emotion", "smiling"} & set(request.attributes)
    if meta is None or not wanted or not emotion_leaves_image(meta):
        return
    canvas = emotion_canvas(crop.rgb, meta)
    left, top, width, height = (int(v) for v in meta["box"])
    probs = analyzer.emotion_model.predict_boxes(canvas, [(left, top, width, height)], flip_tta=True)[0]
    if "smiling" in wanted:
        face.attributes["smile"] = expression.smile(probs)
    if "emotion" in wanted:
        face.attributes["emotion"] = expression.emotion(probs)
