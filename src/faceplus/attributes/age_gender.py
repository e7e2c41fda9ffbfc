"""``gender`` and ``age``: Cydral's networks (gender on dlib's 5-point chip; age averaged over 4 views:
68-point-derived chips at 2 scales, mirrored), one estimate shared by both (:meth:`AgeGenderModel.estimate`)."""

from __future__ import annotations

from typing import Any

from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute


@attribute("gender", order=0)
def gender_attribute(m: Measurements) -> dict[str, Any]:
    return {"value": m.age_gender.gender}


@attribute("age", order=1)
def age_attribute(m: Measurements) -> dict[str, Any]:
    return {"value": int(round(m.age_gender.age))}
