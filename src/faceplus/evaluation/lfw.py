"""LFW's standard 10-fold verification protocol.

The threshold is chosen on nine folds and tested on the tenth; we report the mean accuracy and its
standard deviation, TAR at FAR 1e-3 (on all different-person pairs), and how many images had no face.
A pair with a face missing on either side scores confidence 0 (a rejection), as a deployed system would.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceplus.calibration import Calibration


@dataclass(frozen=True)
class Pair:
    fold: int
    same: bool
    image1: str  # relative path under the LFW root
    image2: str


def lfw_path(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(path: Path) -> list[Pair]:
    """Parse an LFW ``pairs.txt``: a ``folds n`` header, then per fold n same and n different lines."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    folds, per_class = int(lines[0][0]), int(lines[0][1])
    pairs: list[Pair] = []
    rows = lines[1:]
    if len(rows) != folds * 2 * per_class:
        raise ValueError(f"{path}: expected {folds * 2 * per_class} pairs, found {len(rows)}")
    for i, row in enumerate(rows):
        fold = i // (2 * per_class)
        if len(row) == 3:
            pairs.append(Pair(fold, True, lfw_path(row[0], int(row[1])), lfw_path(row[0], int(row[2]))))
        elif len(row) == 4:
            pairs.append(Pair(fold, False, lfw_path(row[0], int(row[1])), lfw_path(row[2], int(row[3]))))
        else:
            raise ValueError(f"{path}: bad pair line {' '.join(row)!r}")
    return pairs


@dataclass(frozen=True)
class LfwResult:
    fold_accuracies: list[float]
    tar_at_far_1e3: float
    images: int
    images_without_face: int
    pairs_missing_face: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_accuracies))

    def summary(self) -> str:
        return (
            f"accuracy {self.mean * 100:.2f}% +- {self.std * 100:.2f}% (10-fold), "
            f"TAR@FAR1e-3 {self.tar_at_far_1e3 * 100:.2f}%, "
            f"{self.images_without_face} of {self.images} images with no face found "
            f"({self.pairs_missing_face} pairs scored as rejections)"
        )


def _best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The confidence threshold maximising accuracy (accept when score >= threshold)."""
    candidates = np.unique(scores)
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # accuracy when threshold = candidates[k]: rejected = scores < c
    pos_below = np.concatenate([[0], np.cumsum(y)])
    neg_below = np.concatenate([[0], np.cumsum(~y)])
    idx = np.searchsorted(s, candidates, side="left")
    correct = neg_below[idx] + (y.sum() - pos_below[idx])
    best = int(np.argmax(correct))
    upper = candidates[best]
    lower = candidates[best - 1] if best > 0 else upper - 1.0
    return float((upper + lower) / 2)


def ten_fold(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> list[float]:
    accuracies = []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        threshold = _best_threshold(scores[train], same[train])
        accuracies.append(float(np.mean((scores[test] >= threshold) == same[test])))
    return accuracies


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> float:
    negatives = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(negatives)))
    threshold = negatives[allowed] if allowed < len(negatives) else -np.inf
    return float(np.mean(scores[same] > threshold))


def pair_scores(pairs: list[Pair], vectors: dict[str, np.ndarray], calibration: Calibration) -> np.ndarray:
    """Confidence per pair; 0 where either image has no face (NaN embedding)."""
    a = np.array([vectors[p.image1] for p in pairs])
    b = np.array([vectors[p.image2] for p in pairs])
    distances = np.linalg.norm(a - b, axis=1)
    return np.where(np.isnan(distances), 0.0, calibration.confidence(np.nan_to_num(distances, nan=10.0)))


def evaluate(
    pairs: list[Pair], vectors: dict[str, np.ndarray], calibration: Calibration, scores_out: Path | None = None
) -> LfwResult:
    scores = pair_scores(pairs, vectors, calibration)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    used = {p.image1 for p in pairs} | {p.image2 for p in pairs}
    missing = {rel for rel in used if np.isnan(vectors[rel]).any()}
    if scores_out:
        with Path(scores_out).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["fold", "same", "confidence"])
            for p, s in zip(pairs, scores, strict=True):
                writer.writerow([p.fold + 1, int(p.same), f"{s:.4f}"])
    return LfwResult(
        fold_accuracies=ten_fold(scores, same, folds),
        tar_at_far_1e3=tar_at_far(scores, same, 1e-3),
        images=len(used),
        images_without_face=len(missing),
        pairs_missing_face=int(sum(p.image1 in missing or p.image2 in missing for p in pairs)),
    )
