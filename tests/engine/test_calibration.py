"""Calibration maths on distributions with known answers, and the shipped calibration file."""

from __future__ import annotations

import numpy as np
import pytest

from faceplus.calibration import (
    Calibration,
    default_calibration,
    equal_error_distance,
    far_distance,
    fit_calibration,
    measured_far,
)
from faceplus.evaluation.impostor_fit import MIN_GROUP_PAIRS
from faceplus.evaluation.lfw import tar_at_far, ten_fold


def _samples(n_impostor: int = 5_000_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.35, 0.06, 20_000), rng.normal(0.8, 0.08, n_impostor)


def test_thresholds_hold_on_fresh_samples_of_the_same_distribution() -> None:
    genuine, impostor = _samples()
    calibration = fit_calibration(genuine, impostor)
    _, fresh = _samples(seed=1)
    for far, rate in measured_far(calibration, fresh).items():
        assert 0.5 <= rate / float(far) <= 2.0, (far, rate)


def test_far_distance_accepts_exactly_the_requested_share() -> None:
    impostor = np.sort(np.random.default_rng(2).uniform(0, 1, 100_000))
    d = far_distance(impostor, 1e-3)
    assert np.sum(impostor <= d) == 100
    with pytest.raises(ValueError):
        far_distance(impostor[:500], 1e-3)


def test_equal_error_distance_between_the_two_means() -> None:
    genuine, impostor = _samples(200_000)
    eer = equal_error_distance(genuine, np.sort(impostor))
    # Normal(0.35, 0.06) vs Normal(0.8, 0.08): equal tail masses where (d-0.35)/0.06 == (0.8-d)/0.08.
    assert eer == pytest.approx(0.35 + 0.45 * 0.06 / 0.14, abs=0.005)


def test_confidence_is_decreasing_and_bounded() -> None:
    calibration = Calibration(midpoint=0.4, scale=0.1, threshold_distances={"1e-3": 0.35})
    values = calibration.confidence(np.linspace(0, 2, 50))
    assert np.all(np.diff(values) < 0) and values.min() >= 0 and values.max() <= 100
    assert calibration.confidence(0.4) == pytest.approx(50)


@pytest.mark.parametrize("embedder", ["sface", "sface-int8", "resnet"])
def test_shipped_calibration_is_measured_not_guessed(embedder: str) -> None:
    shipped = default_calibration(embedder)
    assert shipped.info["command"].startswith("faceplus calibrate")
    if "groups" in shipped.info:
        # Impostors only, each race x gender group's tail modelled from its own bulk: every group recorded, and
        # large enough for its 1% point to rest on ten pairs or more.
        assert len(shipped.info["groups"]) == 14
        assert all(g["pairs"] >= MIN_GROUP_PAIRS for g in shipped.info["groups"].values())
    else:
        assert shipped.info["impostor_pairs"] > 1_000_000  # counted: enough for 1e-5 to be measurable
    t = shipped.thresholds
    assert t["1e-3"] < t["1e-4"] < t["1e-5"]
    d = shipped.threshold_distances
    assert d["1e-3"] > d["1e-4"] > d["1e-5"]


def test_ten_fold_picks_thresholds_on_other_folds() -> None:
    rng = np.random.default_rng(3)
    same = np.tile(np.r_[np.ones(50, bool), np.zeros(50, bool)], 10)
    folds = np.repeat(np.arange(10), 100)
    scores = np.where(same, rng.normal(70, 5, same.size), rng.normal(40, 5, same.size))
    accuracies = ten_fold(scores, same, folds)
    assert len(accuracies) == 10 and np.mean(accuracies) > 0.99
    # Separable except one flipped pair: accuracy drops by exactly that one pair in its fold.
    scores2 = np.where(same, 80.0, 20.0)
    scores2[0] = 10.0
    assert min(ten_fold(scores2, same, folds)) == pytest.approx(0.99)
    assert tar_at_far(scores2, same, 1e-3) == pytest.approx(499 / 500)
