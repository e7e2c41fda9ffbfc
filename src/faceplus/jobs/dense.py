"""The dense landmark jobs (Face++ thousandlandmark): of a face token's kept crop, or of an image's largest face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceplus.engine import Engine
from faceplus.face_request import AnalyzedFace, FaceRequest
from faceplus.results import Box


@dataclass(frozen=True)
class DenseCropRequest:
    """Dense landmarks of a face from its kept crop (the crop's bytes and where it sat)."""

    crop: bytes
    meta: dict[str, Any]
    parts: tuple[str, ...]


@dataclass(frozen=True)
class DenseImageRequest:
    """Dense landmarks of an image's largest face."""

    image: bytes
    #: The form field the image came from (an undecodable image's error names it).
    param: str
    parts: tuple[str, ...]
    #: The server's smallest reported face, as :attr:`faceplus.jobs.detect.DetectRequest.min_face`.
    min_face: tuple[int, int] = (0, 0)


def dense_crop_job(engine: Engine, request: DenseCropRequest) -> dict[str, Any]:
    """Face++ dense landmarks (thousandlandmark) of a face token from its kept crop, in image coordinates: one pass
    through the engine (:meth:`~faceplus.engine.Engine.analyze_image`)."""
    asked = FaceRequest(crop_meta=request.meta, embed=False, dense=request.parts)
    (analyzed,) = engine.analyze_image(request.crop, asked).faces
    return _shift(_landmark(analyzed), int(request.meta["left"]), int(request.meta["top"]))


def dense_image_job(engine: Engine, request: DenseImageRequest) -> tuple[Box, dict[str, Any]] | None:
    """The largest face of an image and its Face++ dense landmarks: one pass through the engine; None without a
    face, or when the largest is smaller than the server's minimum (checked before the dense models run)."""
    asked = FaceRequest(param=request.param, min_face=request.min_face, max_faces=1, embed=False, dense=request.parts)
    found = engine.analyze_image(request.image, asked).faces
    if not found:
        return None
    return found[0].face.box, _landmark(found[0])


def _landmark(analyzed: AnalyzedFace) -> dict[str, Any]:
    """The dense landmarks the pass measured, which the jobs ask for on every face it keeps."""
    if analyzed.dense is None:
        raise AssertionError("a described face has no dense landmarks")
    return analyzed.dense


def _shift(landmark: dict[str, Any], dx: int, dy: int) -> dict[str, Any]:
    """Dense landmark parts moved by (dx, dy); radii (plain numbers) stay."""
    return {
        part: {name: {"x": p["x"] + dx, "y": p["y"] + dy} if isinstance(p, dict) else p for name, p in points.items()}
        for part, points in landmark.items()
    }
