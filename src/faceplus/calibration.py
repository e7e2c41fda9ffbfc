"""Distance -> Face++ confidence (0-100), and the confidences at which the false-accept rate is 1e-3/1e-4/1e-5.

The mapping is a logistic curve in the embedding distance: confidence 50 at the equal-error distance
measured on real pairs, 80 at the median same-person distance. The thresholds are not guessed: they are
the distances at which the measured impostor false-accept rate equals each nominal value, on all
cross-identity pairs of the calibration identities, pushed through the same curve.
``faceplus calibrate`` writes the file this module loads; the shipped one records the command that made it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FAR_LEVELS = ("1e-3", "1e-4", "1e-5")
CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    midpoint: float
    scale: float
    threshold_distances: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)

    def confidence(self, distance: float | np.ndarray) -> float | np.ndarray:
        """Confidence 0-100, decreasing with distance."""
        z = (np.asarray(distance, dtype=np.float64) - self.midpoint) / self.scale
        conf = 100.0 / (1.0 + np.exp(np.clip(z, -50, 50)))
        return float(conf) if np.ndim(conf) == 0 else conf

    @property
    def thresholds(self) -> dict[str, float]:
        """Face++ ``thresholds``: the confidence at each false-accept rate."""
        return {far: round(float(self.confidence(d)), 3) for far, d in self.threshold_distances.items()}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls(**json.loads(Path(path).read_text()))


@cache
def default_calibration() -> Calibration:
    """The calibration shipped with the package (made by ``faceplus calibrate`` on lfw-dev)."""
    text = resources.files("faceplus.data").joinpath(CALIBRATION_FILE).read_text()
    return Calibration(**json.loads(text))


def far_distance(impostor_sorted: np.ndarray, far: float) -> float:
    """The largest distance threshold at which at most ``far`` of impostor distances are accepted (<=)."""
    k = int(math.floor(far * len(impostor_sorted)))
    if k < 1:
        raise ValueError(f"{len(impostor_sorted)} impostor pairs cannot measure a false-accept rate of {far}")
    return float((impostor_sorted[k - 1] + impostor_sorted[k]) / 2)


def equal_error_distance(genuine: np.ndarray, impostor_sorted: np.ndarray) -> float:
    """The distance where the false-reject rate of ``genuine`` equals the false-accept rate of impostors."""
    genuine_sorted = np.sort(genuine)
    grid = np.linspace(genuine_sorted[0], impostor_sorted[-1], 2001)
    frr = 1.0 - np.searchsorted(genuine_sorted, grid, side="right") / len(genuine_sorted)
    far = np.searchsorted(impostor_sorted, grid, side="right") / len(impostor_sorted)
    return float(grid[int(np.argmin(np.abs(frr - far)))])


def fit_calibration(genuine: np.ndarray, impostor: np.ndarray, info: dict[str, Any] | None = None) -> Calibration:
    """Fit the curve and the FAR thresholds on same-person (``genuine``) and impostor distances."""
    impostor_sorted = np.sort(np.asarray(impostor, dtype=np.float64))
    genuine = np.asarray(genuine, dtype=np.float64)
    midpoint = equal_error_distance(genuine, impostor_sorted)
    scale = max((midpoint - float(np.median(genuine))) / math.log(4.0), 1e-3)
    distances = {far: far_distance(impostor_sorted, float(far)) for far in FAR_LEVELS}
    stats = {"genuine_pairs": int(len(genuine)), "impostor_pairs": int(len(impostor_sorted))}
    return Calibration(midpoint, scale, distances, {**stats, **(info or {})})


def measured_far(calibration: Calibration, impostor: np.ndarray) -> dict[str, float]:
    """The false-accept rate each threshold gives on (held-out) impostor distances."""
    impostor = np.asarray(impostor)
    return {far: float(np.mean(impostor <= d)) for far, d in calibration.threshold_distances.items()}
