"""``smiling`` and ``emotion``: fer's mini-Xception with flip TTA (65.5% -> 66.3% on fer2013-dev); smile = P(happy)."""

from __future__ import annotations

from typing import Any

from faceplus.analysis import expression
from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute


@attribute("smiling", order=2, response_key="smile")  # Face++ asks for "smiling", answers "smile"
def smiling(m: Measurements) -> dict[str, Any]:
    return expression.smile(m.emotions)


@attribute("emotion", order=7)
def emotion(m: Measurements) -> dict[str, Any]:
    return expression.emotion(m.emotions)
