"""``eyestatus`` and ``eyegaze``: the iris model's eyelid contour and iris centre (:mod:`faceplus.analysis.eyes`).

Glasses and occlusion are not measured: those fields are ``None`` (the HTTP API declares them in its reply).
"""

from __future__ import annotations

from typing import Any

from faceplus.analysis import eyes
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute


@attribute("eyestatus", order=6)
def eyestatus(m: Measurements) -> dict[str, Any]:
    return eyes.eyestatus(m.eyes)


@attribute("eyegaze", order=9)
def eyegaze(m: Measurements) -> dict[str, Any]:
    return eyes.eyegaze(m.mesh, m.eyes, m.pose.rotation)
