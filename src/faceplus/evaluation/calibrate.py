"""``faceplus calibrate``: measure the FAR thresholds on all cross-identity pairs of a labelled folder.

The shipped calibration is fit on every same-person and every cross-identity pair of the folder
(millions of impostor pairs, so 1e-5 is measurable). To check that the thresholds hold on people the
calibration never saw, identities are split in two halves (by a salted hash of the name), a
calibration is fit on one half and its false-accept rates measured on the impostor pairs of the other,
both ways round, for several salts. Impostor tails are clumpy (one look-alike pair of identities with
many photos each can hold half of all false accepts at 1e-5), so single splits scatter widely; the
pooled rate over all held-out halves is the estimate we report next to each split's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceplus.calibration import Calibration, fit_calibration


def holdout(name: str, salt: int = 0) -> bool:
    """Deterministic 50/50 identity split; each salt gives another split."""
    return hashlib.sha1(f"{salt}:{name}".encode()).digest()[0] % 2 == 1


def _blocks(n: int, size: int = 2048) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def pair_distances(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All same-label and all different-label pair distances (each unordered pair once)."""
    vectors = vectors.astype(np.float64)
    sq = (vectors**2).sum(1)
    genuine, impostor = [], []
    for rows in _blocks(len(vectors)):
        d2 = sq[rows, None] + sq[None, :] - 2 * vectors[rows] @ vectors.T
        d = np.sqrt(np.maximum(d2, 0)).astype(np.float32)
        i = np.arange(rows.start, rows.stop)[:, None]
        j = np.arange(len(vectors))[None, :]
        upper = j > i
        same = labels[rows, None] == labels[None, :]
        genuine.append(d[upper & same])
        impostor.append(d[upper & ~same])
    return np.concatenate(genuine), np.concatenate(impostor)


@dataclass(frozen=True)
class HeldOutCheck:
    """False accepts of a calibration fit on one identity half, counted on the other half's impostor pairs."""

    split: str
    false_accepts: dict[str, int]
    impostor_pairs: int

    def ratio(self, far: str) -> float:
        return self.false_accepts[far] / self.impostor_pairs / float(far)


@dataclass(frozen=True)
class CalibrationRun:
    calibration: Calibration
    checks: list[HeldOutCheck]

    def pooled_ratio(self, far: str) -> float:
        """Measured / nominal false-accept rate over all held-out halves together."""
        accepts = sum(c.false_accepts[far] for c in self.checks)
        pairs = sum(c.impostor_pairs for c in self.checks)
        return accepts / pairs / float(far)


def _fit(vectors: np.ndarray, names: np.ndarray, info: dict | None = None) -> Calibration:
    genuine, impostor = pair_distances(vectors, names)
    return fit_calibration(genuine, impostor, info)


def calibrate(paths: list[str], vectors: np.ndarray, info: dict, salts: int = 6) -> CalibrationRun:
    """Fit on all identities; check on held-out identity halves (both ways round, ``salts`` splits)."""
    names = np.array([p.split("/")[0] for p in paths])
    ok = ~np.isnan(vectors).any(1)
    vectors, names = vectors[ok], names[ok]
    info = {**info, "identities": int(len(set(names))), "images": int(len(names))}
    calibration = _fit(vectors, names, info)
    checks = []
    for salt in range(salts):
        held = np.array([holdout(n, salt) for n in names])
        for label, fit_sel in ((f"{salt}a", ~held), (f"{salt}b", held)):
            fitted = _fit(vectors[fit_sel], names[fit_sel])
            _, impostor = pair_distances(vectors[~fit_sel], names[~fit_sel])
            accepts = {far: int(np.sum(impostor <= d)) for far, d in fitted.threshold_distances.items()}
            checks.append(HeldOutCheck(label, accepts, int(len(impostor))))
    return CalibrationRun(calibration, checks)


def image_list(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).glob("*/*.jpg"))
