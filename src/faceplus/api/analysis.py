"""Landmarks and attributes for detect / face/analyze: the one place the attribute models plug in.

:func:`describe_face` runs :class:`faceplus.attributes.FaceAnalyzer` through the engine. Attributes no
bundled model computes (``beauty``, ``skinstatus``) are refused with ``BAD_ARGUMENTS: return_attributes``
rather than invented.
"""

from __future__ import annotations

from typing import Any

from faceplus.api.forms import Params
from faceplus.attributes import parse_attributes
from faceplus.engine import Engine
from faceplus.imaging import DecodedImage
from faceplus.results import Face


def parse_analysis_params(params: Params) -> tuple[int, list[str]]:
    """``return_landmark`` (0/1/2) and ``return_attributes`` ("none" or a comma list of known names).

    Unknown names, and the Face++ attributes no bundled model computes, are 400
    ``BAD_ARGUMENTS: return_attributes`` (raised by :func:`faceplus.attributes.parse_attributes`).
    """
    landmark = params.int("return_landmark", 0, 0, 2)
    raw = params.str("return_attributes", "none") or "none"
    return landmark, list(parse_attributes(raw))


def describe_face(
    engine: Engine, decoded: DecodedImage, face: Face, return_landmark: int, return_attributes: list[str]
) -> dict[str, Any]:
    """Face++ ``landmark`` and ``attributes`` of one face, as far as faceplus computes them.

    Returns a dict with at most the keys ``landmark`` ({name: {x, y}}) and ``attributes``
    ({name: Face++ shape}); a key is absent when nothing was asked for.
    """
    if not return_landmark and not return_attributes:
        return {}
    engine.analyze(decoded, [face], return_attributes, return_landmark)
    out: dict[str, Any] = {}
    if return_landmark:
        out["landmark"] = face.landmarks
    if return_attributes:
        out["attributes"] = face.attributes
    return out
