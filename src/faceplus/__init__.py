"""faceplus: self-hosted face recognition with the Face++ v3 API.

>>> from faceplus import Engine
>>> faces = Engine().detect("group.jpg")
"""

from faceplus.config import Settings
from faceplus.engine import Engine, NoFaceFound
from faceplus.errors import FaceplusError, ImageError
from faceplus.results import Box, Face, Match

__all__ = ["Box", "Engine", "Face", "FaceplusError", "ImageError", "Match", "NoFaceFound", "Settings"]
