"""The face/analyze jobs: Face++ landmarks and attributes of a face token, from its kept crop or kept image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceplus.engine import Engine
from faceplus.face_request import FaceRequest
from faceplus.jobs.describe import face_details
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
    """Face++ landmark/attributes of the face inside the request's box of a kept image (face/analyze): one pass
    through the engine (:meth:`~faceplus.engine.Engine.analyze_image`)."""
    asked = FaceRequest(
        rectangle=request.box,
        rectangle_inside=False,  # the box detect found and stored, which may reach past the image's edge
        embed=False,
        landmark=request.landmark,
        attributes=request.attributes,
    )
    (analyzed,) = engine.analyze_image(request.image, asked).faces
    return face_details(analyzed.face, request.landmark, request.attributes)


def analyze_crop_job(engine: Engine, request: AnalyzeCropRequest) -> dict[str, Any]:
    """Face++ landmark/attributes of a face token from its kept crop (face/analyze), in image coordinates: one pass
    through the engine, which runs the same models on the same pixels as detect's own description of the face."""
    asked = FaceRequest(crop_meta=request.meta, embed=False, landmark=request.landmark, attributes=request.attributes)
    (analyzed,) = engine.analyze_image(request.crop, asked).faces
    out = face_details(analyzed.face, request.landmark, request.attributes)
    if "landmark" in out:
        dx, dy = int(request.meta["left"]), int(request.meta["top"])
        out["landmark"] = {name: {"x": p["x"] + dx, "y": p["y"] + dy} for name, p in out["landmark"].items()}
    return out
