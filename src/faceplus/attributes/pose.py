"""``headpose``: the 468-point mesh fitted to a symmetric mean face, mirror-averaged.

See :mod:`faceplus.analysis.headpose` and :attr:`faceplus.attributes.measurements.Measurements.pose`."""

from __future__ import annotations

from typing import Any

from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute


@attribute("headpose", order=3)
def headpose(m: Measurements) -> dict[str, Any]:
    return m.pose.to_facepp()
