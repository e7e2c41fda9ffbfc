"""Face++ landmarks and attributes of one face, in the shape the API keeps and replies (measured by the engine's
one pass)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceplus.results import Face


def face_details(face: Face, return_landmark: int, return_attributes: Sequence[str]) -> dict[str, Any]:
    """The Face++ ``landmark`` and ``attributes`` of a face the engine has already described
    (:meth:`~faceplus.engine.Engine.analyze_image`); ``{}`` when nothing was asked for.

    A key is absent when nothing was asked for it. Unmeasured fields stay ``None`` here (and in the stored
    details); :func:`faceplus.api.services.analysis.declare_unmeasured` turns them into the wire form.
    """
    out: dict[str, Any] = {}
    if return_landmark:
        out["landmark"] = face.landmarks
    if return_attributes:
        out["attributes"] = face.attributes
    return out
