"""The API's engine work, as jobs a worker process runs (:mod:`faceplus.workers`) or the server runs inline.

Each job takes the encoded image bytes, not a decoded array: the decode happens in the worker too, so a
large image's pixels never enter the serving process and are freed with the job. Jobs return only what
the routes store and reply (boxes, embeddings, Face++ landmark/attribute dicts), which pickles small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceplus.api.analysis import describe_face
from faceplus.api.errors import bad
from faceplus.api.limits import big_enough, min_face_side
from faceplus.attributes.dense_landmarks import dense_landmarks
from faceplus.crops import emotion_canvas, emotion_leaves_image, make_crop, open_crop
from faceplus.engine import Engine
from faceplus.imaging import DecodedImage
from faceplus.results import Box, Face
from faceplus.store import FaceCrop


@dataclass
class FoundFace:
    """One face as the API keeps it: its box, embedding and the Face++ details computed for it."""

    box: Box
    embedding: np.ndarray | None
    details: dict[str, Any] = field(default_factory=dict)
    #: The face region face/analyze needs later (:mod:`faceplus.crops`); None unless asked for.
    crop: FaceCrop | None = None


class FoundFaces(list[FoundFace]):
    """The faces a detect job kept, and how many detected faces it left out as smaller than ``min_face`` px."""

    left_out: int = 0
    min_face: int = 0


def warm_job(engine: Engine) -> dict[str, Any]:
    """A pool worker's warm-up: unpickling this imports the job modules (3.6 s of a worker's first call), then
    every model runs once (:func:`faceplus.workers.warm`) and a detect goes through :func:`detect_job`."""
    from faceplus.workers import warm, warmup_jpeg

    report = warm(engine)
    detect_job(engine, warmup_jpeg(), "image_file", None, "face_rectangle", 0, [], 5)
    return report


def detect_job(
    engine: Engine,
    data: bytes,
    param: str,
    rectangle: Box | None,
    rectangle_param: str,
    landmark: int,
    attributes: list[str],
    describe_first: int | None,
    keep_crops: bool = False,
    min_face: tuple[int, int] = (0, 0),
) -> FoundFaces:
    """Decode, find the faces (or the given rectangle), embed them, describe the ``describe_first`` largest.

    ``describe_first`` None describes every face (Face++ ``calculate_all``); ``keep_crops`` adds each face's
    analysis region (:func:`faceplus.crops.make_crop`), so its token can be analyzed later. Detected faces
    smaller than the server's minimum (``min_face``: (pixels, divisor of the short side), see
    :func:`faceplus.api.limits.min_face_side`) are dropped first, so no work is spent on them; the reply counts
    them (``left_out``), so the caller can say so.
    """
    decoded = engine.load(data, param=param)
    minimum = left_out = 0
    if rectangle is not None:
        if rectangle.right > decoded.width or rectangle.bottom > decoded.height:
            raise bad(rectangle_param)
        faces = [engine.face_at(decoded, rectangle)]
    else:
        minimum = min_face_side(*min_face, decoded.width, decoded.height)
        detected = engine.detect(decoded, embed=False)
        faces = [face for face in detected if big_enough(face.box, minimum)]
        left_out = len(detected) - len(faces)
        if faces:
            engine.embed_faces(decoded.rgb, faces)
    found = FoundFaces(
        FoundFace(
            face.box,
            face.embedding,
            describe_face(engine, decoded, face, landmark, attributes)
            if describe_first is None or i < describe_first
            else {},
            make_crop(decoded, face) if keep_crops else None,
        )
        for i, face in enumerate(faces)
    )
    found.left_out, found.min_face = left_out, minimum
    return found


def analyze_job(engine: Engine, data: bytes, box: Box, landmark: int, attributes: list[str]) -> dict[str, Any]:
    """Face++ landmark/attributes of the face inside ``box`` of a kept image (face/analyze)."""
    decoded = engine.load(data)
    face = engine.face_at(decoded, box, embed=False)
    return describe_face(engine, decoded, face, landmark, attributes)


def analyze_crop_job(
    engine: Engine, data: bytes, meta: dict[str, Any], landmark: int, attributes: list[str]
) -> dict[str, Any]:
    """Face++ landmark/attributes of a face token from its kept crop (face/analyze), in image coordinates.

    The same models run on the same pixels as detect's own description of the face; fer's emotion crop of a
    face at the image's edge reads the whole image's padding value, so it runs on a canvas that has it.
    """
    decoded, face = open_crop(data, meta)
    out = describe_face(engine, decoded, face, landmark, attributes)
    wanted = {"emotion", "smiling"} & set(attributes)
    if wanted and emotion_leaves_image(meta):
        from faceplus.attributes import expression

        canvas = emotion_canvas(decoded.rgb, meta)
        left, top, width, height = (int(v) for v in meta["box"])
        probs = engine.analyzer.emotion_model.predict_boxes(canvas, [(left, top, width, height)], flip_tta=True)[0]
        if "smiling" in wanted:
            out["attributes"]["smile"] = expression.smile(probs)
        if "emotion" in wanted:
            out["attributes"]["emotion"] = expression.emotion(probs)
    if "landmark" in out:
        dx, dy = int(meta["left"]), int(meta["top"])
        out["landmark"] = {name: {"x": p["x"] + dx, "y": p["y"] + dy} for name, p in out["landmark"].items()}
    return out


def _dense(engine: Engine, decoded: DecodedImage, face: Face, parts: list[str]) -> dict[str, Any]:
    mesh = engine.analyzer.mesh468(decoded.rgb, face)
    eyes = engine.analyzer.iris_model.eyes(decoded.rgb, mesh)
    return dense_landmarks(mesh, eyes, parts)


def dense_crop_job(engine: Engine, data: bytes, meta: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """Face++ dense landmarks (thousandlandmark) of a face token from its kept crop, in image coordinates."""
    decoded, face = open_crop(data, meta)
    return _shift(_dense(engine, decoded, face, parts), int(meta["left"]), int(meta["top"]))


def dense_image_job(
    engine: Engine, data: bytes, param: str, parts: list[str], min_face: tuple[int, int] = (0, 0)
) -> tuple[Box, dict[str, Any]] | None:
    """The largest face of an image and its Face++ dense landmarks (thousandlandmark); None without a face, or
    when it is smaller than the server's minimum (``min_face``, as in :func:`detect_job`: checked on the decoded size,
    before the dense models run)."""
    decoded = engine.load(data, param=param)
    faces = engine.detect(decoded, embed=False, max_faces=1)
    if not faces or not big_enough(faces[0].box, min_face_side(*min_face, decoded.width, decoded.height)):
        return None
    return faces[0].box, _dense(engine, decoded, faces[0], parts)


def _shift(landmark: dict[str, Any], dx: int, dy: int) -> dict[str, Any]:
    """Dense landmark parts moved by (dx, dy); radii (plain numbers) stay."""
    return {
        part: {name: {"x": p["x"] + dx, "y": p["y"] + dy} if isinstance(p, dict) else p for name, p in points.items()}
        for part, points in landmark.items()
    }
