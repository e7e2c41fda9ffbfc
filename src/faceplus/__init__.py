"""faceplus: self-hosted face recognition with the Face++ v3 API.

>>> from faceplus import Engine
>>> faces = Engine().detect("group.jpg")

The names below are loaded on first use (PEP 562), so importing a submodule (the command line, the settings)
does not load OpenCV, dlib and onnxruntime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "Engine": "faceplus.engine",
    "NoFaceFound": "faceplus.engine",
    "FaceplusError": "faceplus.errors",
    "ImageError": "faceplus.errors",
    "Box": "faceplus.results",
    "Face": "faceplus.results",
    "Match": "faceplus.results",
    "EngineSettings": "faceplus.settings",
}

__all__ = ["Box", "Engine", "Face", "FaceplusError", "ImageError", "Match", "NoFaceFound", "EngineSettings"]

if TYPE_CHECKING:
    from faceplus.engine import Engine, NoFaceFound
    from faceplus.errors import FaceplusError, ImageError
    from faceplus.results import Box, Face, Match
    from faceplus.settings import EngineSettings


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'faceplus' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
