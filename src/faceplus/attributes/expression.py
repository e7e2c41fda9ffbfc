"""Emotion and smile in Face++ shapes from the 7 probabilities of :class:`~faceplus.models.emotion.EmotionModel`.

``smile`` is the happiness probability in percent with Face++'s threshold 50: mini-Xception's
"happy" class is, in FER2013's labels, a smiling face, and on fer2013-dev its probability separates
happy from neutral faces (see tests/engine/attributes/test_mouth_smile.py). No separate smile model is bundled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceplus.attributes.measurements import Measurements
from faceplus.attributes.registry import attribute
from faceplus.models.emotion import EMOTIONS

#: The model's class names -> Face++ ``emotion`` keys.
FACEPP_EMOTION = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happiness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
SMILE_THRESHOLD = 50.0


def emotion(probabilities: np.ndarray) -> dict[str, float]:
    """Face++ ``emotion``: the seven classes in percent (they sum to 100)."""
    p = np.asarray(probabilities, dtype=np.float64)
    p = p / p.sum()
    return {FACEPP_EMOTION[name]: round(float(v) * 100.0, 3) for name, v in zip(EMOTIONS, p, strict=True)}


def smile(probabilities: np.ndarray) -> dict[str, float]:
    """Face++ ``smile``: P(happy) in percent, threshold 50."""
    p = np.asarray(probabilities, dtype=np.float64)
    return {"value": round(float(p[EMOTIONS.index("happy")] / p.sum()) * 100.0, 3), "threshold": SMILE_THRESHOLD}


@attribute("smiling", order=2, response_key="smile")  # Face++ asks for "smiling", answers "smile"
def smiling_attribute(m: Measurements) -> dict[str, Any]:
    return smile(m.emotions)


@attribute("emotion", order=7)
def emotion_attribute(m: Measurements) -> dict[str, Any]:
    return emotion(m.emotions)
