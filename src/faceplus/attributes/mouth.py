"""``mouthstatus``: the inner-lip gap on the mesh (:mod:`faceplus.analysis.mouth`).

Masks and other occlusion are not measured (``None``)."""

from __future__ import annotations

from typing import Any

from faceplus.analysis import mouth
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute


@attribute("mouthstatus", order=8)
def mouthstatus(m: Measurements) -> dict[str, Any]:
    return mouth.mouthstatus(m.mesh)
