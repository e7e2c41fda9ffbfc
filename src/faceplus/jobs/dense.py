"""The dense landmark jobs (Face++ thousandlandmark): of a face token's kept crop, or of an image's largest face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceplus.attributes.dense_landmarks import dense_landmarks
from faceplus.crops import open_crop
from faceplus.engine import Engine
from faceplus.face_request import big_enough, min_face_side
from faceplus.imaging import DecodedImage
from faceplus.results import Box, Face


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


def _dense(engine: Engine, decoded: DecodedImage, face: Face, parts: list[str]) -> dict[str, Any]:
    mesh = engine.analyzer.mesh468(decoded.rgb, face)
    eyes = engine.analyzer.iris_model.eyes(decoded.rgb, mesh)
    return dense_landmarks(mesh, eyes, parts)


def dense_crop_job(engine: Engine, request: DenseCropRequest) -> dict[str, Any]:
    """Face++ dense landmarks (thousandlandmark) of a face token from its kept crop, in image coordinates."""
    decoded, face = open_crop(request.crop, request.meta)
    landmark = _dense(engine, decoded, face, list(request.parts))
    return _shift(landmark, int(request.meta["left"]), int(request.meta["top"]))


def dense_image_job(engine: Engine, request: DenseImageRequest) -> tuple[Box, dict[str, Any]] | None:
    """The largest face of an image and its Face++ dense landmarks; None without a face, or when it is smaller
    than the server's minimum (checked on the decoded size, before the dense models run)."""
    decoded = engine.load(request.image, param=request.param)
    faces = engine.detect(decoded, embed=False, max_faces=1)
    minimum = min_face_side(*request.min_face, decoded.width, decoded.height)
    if not faces or not big_enough(faces[0].box, minimum):
        return None
    return faces[0].box, _dense(engine, decoded, faces[0], list(request.parts))


def _shift(landmark: dict[str, Any], dx: int, dy: int) -> dict[str, Any]:
    """Dense landmark parts moved by (dx, dy); radii (plain numbers) stay."""
    return {
        part: {name: {"x": p["x"] + dx, "y": p["y"] + dy} if isinstance(p, dict) else p for name, p in points.items()}
        for part, points in landmark.items()
    }
