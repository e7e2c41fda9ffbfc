"""The face/analyze jobs: Face++ landmarks and attributes of a face token, from its kept crop or kept image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceplus.crops import emotion_canvas, emotion_leaves_image, open_crop
from faceplus.engine import Engine
from faceplus.jobs.describe import describe_face
from faceplus.results import Box


@dataclass(frozen=True)
class AnalyzeRequest:
    """Describe the face inside ``box`` of a kept image."""

    image: bytes
    box: Box
    landmark: int = 0
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalyzeCropRequest:
    """Describe a face from its kept crop (:mod:`faceplus.crops`: the crop's bytes and where it sat)."""

    crop: bytes
    meta: dict[str, Any]
    landmark: int = 0
    attributes: tuple[str, ...] = ()


def analyze_job(engine: Engine, request: AnalyzeRequest) -> dict[str, Any]:
    """Face++ landmark/attributes of the face inside the request's box of a kept image (face/analyze)."""
    decoded = engine.load(request.image)
    face = engine.face_at(decoded, request.box, embed=False)
    return describe_face(engine, decoded, face, request.landmark, list(request.attributes))


def analyze_crop_job(engine: Engine, request: AnalyzeCropRequest) -> dict[str, Any]:
    """Face++ landmark/attributes of a face token from its kept crop (face/analyze), in image coordinates.

    The same models run on the same pixels as detect's own description of the face; fer's emotion crop of a
    face at the image's edge reads the whole image's padding value, so it runs on a canvas that has it.
    """
    meta, attributes = request.meta, list(request.attributes)
    decoded, face = open_crop(request.crop, meta)
    out = describe_face(engine, decoded, face, request.landmark, attributes)
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
