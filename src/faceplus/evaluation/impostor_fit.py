"""Thresholds from impostor pairs alone, each race x gender group weighing the same (``faceplus calibrate --groups``).

A folder labelled by race and gender but not by identity (FairFace, UTKFace) gives impostor pairs only: every two
images are taken to be two people. Two things stop those pairs from setting the rarer thresholds directly:

* **Same person, other photo.** FairFace crops several faces from one Flickr album, so a few of its "impostor"
  pairs are the same person: on fairface-dev's first half (4.6 M adult pairs) 78 lie closer than 0.9 (SFace),
  where lfw-dev's 8.1 M true impostor pairs have 6. They are exactly the pairs a "1e-5" threshold is read from:
  read off directly it lands at 0.78 (lfw-dev impostors: 1.03), where 45% of lfw-dev's same-person pairs pass.
* **Too few pairs per group.** Equal weight per race x gender means each group's own false-accept rate counts,
  and a group of 100-300 faces has 5,000-60,000 pairs: too few to show 1e-4, let alone 1e-5.

So each group's impostor scores are modelled, not counted, in their tail: the cosine similarity of an impostor
pair (``1 - d^2 / 2`` for unit embeddings) is taken to be normal, its mean and spread read from the group's
bulk (the distances at which 10%, 3% and 1% of its pairs are accepted: hundreds to thousands of pairs, where a
few same-person pairs move nothing). On lfw-dev's 8.1 M impostor pairs, a single such fit from the same three
points gives the distances at "1e-3"/"1e-4"/"1e-5" within 0.0002 of the counted ones (docs/ENGINE.md). The
thresholds are the distances at which the **mean of the groups' modelled rates** is each nominal rate.

Without same-person pairs there is no equal-error point or same-person median for :func:`fit_calibration`'s
curve; the curve is instead anchored on the thresholds themselves (:func:`anchored_curve`), so each threshold
maps to the confidence Face++ reports for that rate, whatever the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from faceplus.calibration import FAR_LEVELS, Calibration, far_distance

if TYPE_CHECKING:
    from faceplus.evaluation.far import Population

#: Face++'s compare thresholds (its replies' ``thresholds``): the confidences a Face++ client compares against,
#: which a curve anchored on faceplus's own thresholds reproduces (:func:`anchored_curve`).
FACEPP_CONFIDENCES = {"1e-3": 62.327, "1e-4": 69.101, "1e-5": 73.975}
#: The accepted shares of a group's impostor pairs its normal tail is read from (its bulk: at 1% a group of
#: 5,000 pairs still has 50 accepted).
TAIL_POINTS = (1e-1, 3e-2, 1e-2)
#: Fewest impostor pairs a group may have: ten at or below its 1% point.
MIN_GROUP_PAIRS = 1000


def similarity(distance: float | np.ndarray) -> float | np.ndarray:
    """Cosine similarity of two unit embeddings ``distance`` apart (L2)."""
    return 1.0 - np.square(distance) / 2.0


def distance_of(similarity_value: float) -> float:
    """L2 distance of two unit embeddings with this cosine similarity."""
    return math.sqrt(max(0.0, 2.0 - 2.0 * similarity_value))


@dataclass(frozen=True)
class NormalTail:
    """A group's impostor cosine similarities as a normal (``mean``, ``spread``) fitted on its bulk."""

    mean: float
    spread: float
    pairs: int

    def far(self, distance: float) -> float:
        """Modelled share of the group's impostor pairs at or below ``distance``."""
        z = (float(similarity(distance)) - self.mean) / self.spread
        return 0.5 * math.erfc(z / math.sqrt(2.0))


def fit_tail(impostor: np.ndarray, points: Sequence[float] = TAIL_POINTS) -> NormalTail:
    """Normal in cosine similarity through the group's distances at ``points`` (least squares on the probit)."""
    ordered = np.sort(np.asarray(impostor, np.float64))
    if len(ordered) < MIN_GROUP_PAIRS:
        raise ValueError(f"{len(ordered)} impostor pairs: a group needs at least {MIN_GROUP_PAIRS}")
    z = np.array([NormalDist().inv_cdf(1.0 - p) for p in points])
    s = np.array([similarity(far_distance(ordered, p)) for p in points], np.float64)
    spread, mean = np.polyfit(z, s, 1)
    return NormalTail(float(mean), float(spread), int(len(ordered)))


def balanced_distance(tails: Sequence[NormalTail], far: float) -> float:
    """The distance at which the mean of the groups' modelled false-accept rates is ``far`` (bisection)."""
    low, high = 0.0, 2.0  # distance 0 accepts nothing; 2 (opposite vectors) accepts everything

    def rate(d: float) -> float:
        return float(np.mean([t.far(d) for t in tails]))

    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if rate(middle) <= far else (low, middle)
    return low


def anchored_curve(threshold_distances: Mapping[str, float]) -> tuple[float, float]:
    """(midpoint, scale) of the logistic curve that gives each threshold Face++'s confidence for its rate.

    Least squares in the logit (``logit(c / 100) = (midpoint - d) / scale`` is a line in ``d``); with three
    levels the three confidences are met within a few hundredths when the thresholds are evenly spaced in the
    log of the rate, as an impostor tail makes them.
    """
    levels = [far for far in threshold_distances if far in FACEPP_CONFIDENCES]
    if len(levels) < 2:
        raise ValueError("anchoring the confidence curve needs thresholds at two rates at least")
    d = np.array([threshold_distances[far] for far in levels], np.float64)
    c = np.array([FACEPP_CONFIDENCES[far] / 100.0 for far in levels])
    slope, intercept = np.polyfit(d, np.log(c / (1.0 - c)), 1)
    if slope >= 0:
        raise ValueError("thresholds do not fall with the rate: no curve maps them to rising confidences")
    scale = -1.0 / slope
    return float(intercept * scale), float(scale)


def fit_groups(
    groups: Mapping[str, np.ndarray], info: dict[str, Any], levels: Sequence[str] = FAR_LEVELS
) -> Calibration:
    """Thresholds at which the groups' mean modelled rate is each level, and the curve anchored on them.

    ``groups``: each race x gender group's impostor distances (pairs within the group: the impostors an attacker
    would pick, and what each group's row of ``faceplus eval far`` counts). ``info`` is recorded with the fit's
    own figures: pairs per group and each group's tail.
    """
    tails = {name: fit_tail(d) for name, d in groups.items()}
    distances = {far: balanced_distance(list(tails.values()), float(far)) for far in levels}
    midpoint, scale = anchored_curve(distances)
    recorded = {
        "genuine_pairs": 0,
        "impostor_pairs": int(sum(t.pairs for t in tails.values())),
        "method": (
            "impostor pairs only, within each race x gender group; each group's cosine similarities modelled as "
            f"a normal through its distances at {', '.join(f'{p:g}' for p in TAIL_POINTS)} accepted; thresholds "
            "where the mean of the groups' modelled rates is nominal (each group weighs the same); confidence "
            "curve anchored so the thresholds read Face++'s confidences "
            + "/".join(f"{FACEPP_CONFIDENCES[f]}" for f in levels if f in FACEPP_CONFIDENCES)
        ),
        "groups": {
            name: {"pairs": t.pairs, "mean": round(t.mean, 6), "spread": round(t.spread, 6)}
            for name, t in tails.items()
        },
    }
    return Calibration(midpoint, scale, distances, {**recorded, **info})


# -- a labelled folder (faceplus calibrate --groups) ---------------------------------------------------
#: ``--half``: the images a fit uses, by the hash split ``faceplus eval far --half`` and the cohort study use.
HALVES = ("all", "first", "second")


def half_rows(population: Population, half: str) -> np.ndarray:
    """Rows of ``population`` in ``half`` (``first``: split flag False, as the cohort study fits on)."""
    if half == "all":
        return np.arange(len(population.people))
    return np.flatnonzero(population.half == (half == "second"))


def other_half(half: str) -> str | None:
    """The half a fit on ``half`` leaves unseen (None for ``all``)."""
    return {"first": "second", "second": "first"}.get(half)


def group_pairs(population: Population, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Impostor distances within each race x gender group among ``rows`` (every two images: two people)."""
    from faceplus.evaluation.far import pair_matrix, upper_pairs
    from faceplus.evaluation.populations import groups, is_race_gender

    matrix = pair_matrix(population.vectors[rows])
    people = [population.people[i] for i in rows]
    return {
        name: upper_pairs(matrix, np.flatnonzero(mask))
        for name, mask in groups(people)
        if is_race_gender(name) and mask.any()
    }


def calibrated_on(population: Population, half: str, images: int, date: str) -> str:
    """What compare replies say the thresholds rest on: the data, its terms, which images, how weighed."""
    from faceplus.evaluation.populations import TERMS

    which = "all" if half == "all" else f"the {half} half"
    return (
        f"{population.name}: impostor pairs within each race x gender group of {which} of its faces "
        f"({images} faces), each group weighing the same; {TERMS[population.kind]} ({date})"
    )


def held_out_table(calibration: Calibration, population: Population, half: str) -> str:
    """Per-group false accepts of ``calibration`` on the half it never saw (counted, every pair an impostor)."""
    from faceplus.evaluation.far import format_table, group_far

    rows = half_rows(population, half)
    vectors = population.vectors[rows]
    people = [population.people[i] for i in rows]
    counted = group_far(
        calibration.scores(vectors, vectors), people, np.arange(len(rows)), calibration.threshold_distances
    )
    title = (
        f"Held out: {population.name} {half} half ({len(rows)} faces, never fit on). Same-person pairs among its "
        "'impostors' (the folder has no identities) make every rate an upper bound:"
    )
    return format_table(title, counted, tuple(calibration.threshold_distances))
