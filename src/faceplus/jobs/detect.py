"""The detect job: find (or take) an image's faces, embed them and describe the largest few.

detect, compare, search and the FaceAlbum's addimage/searchimage all run it (with different requests). The job
takes the encoded image bytes, not a decoded array: the decode happens in the worker too, so a large image's
pixels never enter the serving process and are freed with the job. It returns only what the API stores and
replies (boxes, embeddings, Face++ landmark/attribute dicts), which pickles small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceplus.engine import Engine
from faceplus.face_request import FaceRequest, ImageFaces
from faceplus.jobs.describe import face_details
from faceplus.results import Box, Face, FaceCrop


@dataclass
class FoundFace:
    """One face as the API keeps it: its box, embedding and the Face++ details computed for it."""

    box: Box
    embedding: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    #: The face region face/analyze needs later (:mod:`faceplus.crops`); None unless asked for.
    crop: FaceCrop | None = None


class FoundFaces(list[FoundFace]):
    """The faces a detect job kept, and how many detected faces it left out as smaller than ``min_face`` px."""

    left_out: int = 0
    min_face: int = 0


@dataclass(frozen=True)
class DetectRequest:
    """What one detect asks of the engine."""

    #: The encoded image.
    image: bytes
    #: The form field the image came from (an undecodable image's error names it).
    param: str = "image_file"
    #: A box to use instead of detecting (Face++ ``face_rectangle``), kept whatever its size.
    rectangle: Box | None = None
    #: The form field of ``rectangle`` (a box outside the image is ``BAD_ARGUMENTS: <it>``).
    rectangle_param: str = "face_rectangle"
    #: Face++ ``return_landmark``: 0, 1 (83 points) or 2 (106 points).
    landmark: int = 0
    #: The measured Face++ attribute names to compute.
    attributes: tuple[str, ...] = ()
    #: How many of the largest faces get landmarks and attributes; None: all (Face++ ``calculate_all``).
    describe_first: int | None = 0
    #: Whether each face's analysis region comes back (:func:`faceplus.crops.make_crop`), so its token can be
    #: analyzed later.
    keep_crops: bool = False
    #: The server's smallest reported face: (pixels, divisor of the short side), see
    #: :func:`faceplus.face_request.min_face_side`.
    min_face: tuple[int, int] = (0, 0)


def _embedding(face: Face) -> np.ndarray:
    """The face's embedding, which :func:`detect_job` asks the engine for on every face it keeps."""
    if face.embedding is None:
        raise AssertionError("a kept face was not embedded")
    return face.embedding


def warm_job(engine: Engine) -> dict[str, Any]:
    """A pool worker's warm-up: unpickling this imports the job modules (3.6 s of a worker's first call), then
    every model runs once (:func:`faceplus.workers.warm`) and a detect goes through :func:`detect_job`."""
    from faceplus.workers import warm, warmup_jpeg

    report = warm(engine)
    detect_job(engine, DetectRequest(warmup_jpeg(), describe_first=5))
    return report


def detect_job(engine: Engine, request: DetectRequest) -> FoundFaces:
    """Decode, find the faces (or the given rectangle), embed them, describe the ``describe_first`` largest: one
    pass through the engine (:meth:`~faceplus.engine.Engine.analyze_image`).

    Detected faces smaller than the server's minimum are dropped first, so no work is spent on them; the reply
    counts them (``left_out``), so the caller can say so.
    """
    return found_faces(engine.analyze_image(request.image, face_request(request)), request)


def face_request(request: DetectRequest) -> FaceRequest:
    """What the engine computes for a detect request."""
    return FaceRequest(
        param=request.param,
        rectangle=request.rectangle,
        rectangle_param=request.rectangle_param,
        min_face=request.min_face,
        embed=True,
        landmark=request.landmark,
        attributes=request.attributes,
        describe_first=request.describe_first,
        crops=request.keep_crops,
    )


def found_faces(result: ImageFaces, request: DetectRequest) -> FoundFaces:
    """The engine's pass as the API keeps it: boxes, embeddings, Face++ details of the described faces, crops."""
    found = FoundFaces(
        FoundFace(
            analyzed.face.box,
            _embedding(analyzed.face),
            face_details(analyzed.face, request.landmark, request.attributes) if analyzed.described else {},
            analyzed.crop,
        )
        for analyzed in result.faces
    )
    found.left_out, found.min_face = result.left_out, result.min_face
    return found
