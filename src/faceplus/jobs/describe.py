"""Face++ landmarks and attributes of one face, in the shape the API keeps and replies (measured by the engine)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceplus.engine import Engine
from faceplus.imaging import DecodedImage
from faceplus.results import Face


def describe_face(
    engine: Engine, decoded: DecodedImage, face: Face, return_landmark: int, return_attributes: list[str]
) -> dict[str, Any]:
    """Face++ ``landmark`` and ``attributes`` of one face, as far as faceplus computes them.

    Returns a dict with at most the keys ``landmark`` ({name: {x, y}}) and ``attributes``
    ({name: Face++ shape}); a key is absent when nothing was asked for. Unmeasured fields stay ``None``
    here (and in the stored details); :func:`faceplus.api.services.analysis.declare_unmeasured` turns them
    into the wire form.
    """
    if not return_landmark and not return_attributes:
        return {}
    engine.analyze(decoded, [face], return_attributes, return_landmark)
    return face_details(face, return_landmark, return_attributes)


def face_details(face: Face, return_landmark: int, return_attributes: Sequence[str]) -> dict[str, Any]:
    """The Face++ ``landmark`` and ``attributes`` of a face the engine has already described (as
    :func:`describe_face` returns them); ``{}`` when nothing was asked for."""
    out: dict[str, Any] = {}
    if return_landmark:
        out["landmark"] = face.landmarks
    if return_attributes:
        out["attributes"] = face.attributes
    return out
