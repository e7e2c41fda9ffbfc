"""``faceplus calibrate``: measure the FAR thresholds on all cross-identity pairs of a labelled folder.

The shipped calibration is fit on every same-person and every cross-identity pair of the folder
(millions of impostor pairs, so 1e-5 is measurable). To check that the thresholds hold on people the
calibration never saw, identities are split in two halves (by a salted hash of the name), a
calibration is fit on one half and its false-accept rates measured on the impostor pairs of the other,
both ways round, for several salts. Impostor tails are clumpy (one look-alike pair of identities with
many photos each can hold half of all false accepts at 1e-5), so single splits scatter widely; the
pooled rate over all held-out halves is the estimate we report next to each split's.

The same fit runs on a FaceSet's stored embeddings, with its user_ids as the identities
(:func:`faceset_sample`), so an operator can calibrate on their own population without a photo folder.

:func:`calibrate_cohort` fits a cohort-normalised calibration (:class:`~faceplus.calibration.CohortNorm`) on
the operator's own people: one face each of some identities (chosen by a hash) forms the cohort, and those
identities are kept out of the pairs the thresholds and the held-out check are measured on.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from faceplus.calibration import FAR_LEVELS, Calibration, CohortNorm, fit_calibration

#: Same-person pairs below which a calibration is refused: they place the confidence curve (50 at the
#: equal-error distance, 80 at their median), and a handful of pairs would make that placement a guess.
MIN_GENUINE_PAIRS = 20
#: Impostor pairs at or below each threshold by default. With k of them the true false-accept rate at the
#: fitted threshold lies within about 0.48x-1.7x nominal (95%) for k = 10, but 0.03x-3.7x for k = 1.
DEFAULT_MIN_FALSE_ACCEPTS = 10


#: Cohort neighbours per face, at most: the shipped cohort calibration's k (picked on UTKFace halves for
#: demographic differentials; docs/ENGINE.md). Smaller cohorts get fewer (:func:`cohort_k`).
DEFAULT_COHORT_K = 25
#: Default cohort: one identity in COHORT_SHARE (the rest give the pairs), at most MAX_COHORT faces (the
#: shipped cohort has 985; more only costs time per compare).
COHORT_SHARE = 4
MAX_COHORT = 1000
#: Cohort faces at least, and per neighbour at least. Set after measuring held-out TAR on lfw-dev (raw against
#: normalised, docs/ENGINE.md): with 120 faces normalising lowered TAR at "1e-4" whatever k (k 25: 84.6% ->
#: 72.7%, k 6: 83.1%), and so did 240 faces with k 25 (83.7% -> 80.6%, 10 faces per neighbour); 240 with k 12 or
#: 6, 360 with k 25 and 477 with k 6-25 raised it (86.8-92.4%). A face's k nearest must stay a small, local
#: share of the cohort, or its density tends to its mean distance to everyone.
MIN_COHORT = 200
MIN_COHORT_PER_K = 15


class NotEnoughPairs(ValueError):
    """The identities give too few genuine or impostor pairs to measure the false-accept rates asked."""


def needed_impostor_pairs(far: str, min_false_accepts: int = DEFAULT_MIN_FALSE_ACCEPTS) -> int:
    """Impostor pairs needed for ``min_false_accepts`` of them to fall at or below the ``far`` threshold."""
    rate = float(far)
    n = max(1, math.ceil(min_false_accepts / rate - 1e-6))
    while math.floor(rate * n) < min_false_accepts:  # far_distance's own rule, exact in floating point
        n += 1
    return n


def pair_counts(labels: Sequence[str]) -> tuple[int, int]:
    """(same-identity, different-identity) unordered pairs among faces labelled ``labels``."""
    n = len(labels)
    genuine = sum(c * (c - 1) // 2 for c in Counter(labels).values())
    return genuine, n * (n - 1) // 2 - genuine


def check_pairs(
    labels: Sequence[str],
    levels: Sequence[str] = FAR_LEVELS,
    min_false_accepts: int = DEFAULT_MIN_FALSE_ACCEPTS,
) -> tuple[int, int]:
    """The pair counts, or :class:`NotEnoughPairs` saying what each requested rate needs."""
    genuine, impostor = pair_counts(labels)
    short = [far for far in levels if impostor < needed_impostor_pairs(far, min_false_accepts)]
    if genuine < MIN_GENUINE_PAIRS or short:
        needs = ", ".join(f"{needed_impostor_pairs(far, min_false_accepts):,} for FAR {far}" for far in levels)
        lacking = ([] if genuine >= MIN_GENUINE_PAIRS else ["same-person pairs"]) + [f"FAR {far}" for far in short]
        raise NotEnoughPairs(
            f"{len(labels)} faces of {len(set(labels))} identities give {genuine:,} same-person and "
            f"{impostor:,} impostor pairs. A calibration needs {MIN_GENUINE_PAIRS} same-person pairs, and "
            f"impostor pairs: {needs} ({min_false_accepts} false accepts at each threshold, --min-false-accepts). "
            f"Too few for: {', '.join(lacking)}."
        )
    return genuine, impostor


def holdout(name: str, salt: int = 0) -> bool:
    """Deterministic 50/50 identity split; each salt gives another split."""
    return hashlib.sha1(f"{salt}:{name}".encode()).digest()[0] % 2 == 1


def _blocks(n: int, size: int = 2048) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def pair_distances(
    vectors: np.ndarray, labels: np.ndarray, shift: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All same-label and all different-label pair distances (each unordered pair once).

    ``shift`` (per face): the distance of faces i, j becomes ``d - (shift[i] + shift[j]) / 2``; with
    ``shift = density - reference`` that is :meth:`CohortNorm.normalize`'s cohort-normalised distance.
    """
    vectors = vectors.astype(np.float64)
    sq = (vectors**2).sum(1)
    genuine, impostor = [], []
    for rows in _blocks(len(vectors)):
        d2 = sq[rows, None] + sq[None, :] - 2 * vectors[rows] @ vectors.T
        d = np.sqrt(np.maximum(d2, 0))
        if shift is not None:
            d = d - (shift[rows, None] + shift[None, :]) / 2
        d = d.astype(np.float32)
        i = np.arange(rows.start, rows.stop)[:, None]
        j = np.arange(len(vectors))[None, :]
        upper = j > i
        same = labels[rows, None] == labels[None, :]
        genuine.append(d[upper & same])
        impostor.append(d[upper & ~same])
    return np.concatenate(genuine), np.concatenate(impostor)


@dataclass(frozen=True)
class HeldOutCheck:
    """False accepts of a calibration fit on one identity half, counted on the other half's impostor pairs,
    and its true accepts among the other half's same-person pairs."""

    split: str
    false_accepts: dict[str, int]
    impostor_pairs: int
    true_accepts: dict[str, int] = field(default_factory=dict)
    genuine_pairs: int = 0

    def ratio(self, far: str) -> float:
        return self.false_accepts[far] / self.impostor_pairs / float(far)


def pooled_ratio(checks: Sequence[HeldOutCheck], far: str) -> float:
    """Measured / nominal false-accept rate over all held-out halves together (NaN without any)."""
    accepts = sum(c.false_accepts[far] for c in checks)
    pairs = sum(c.impostor_pairs for c in checks)
    return accepts / pairs / float(far) if pairs else math.nan


def pooled_tar(checks: Sequence[HeldOutCheck], far: str) -> float:
    """Share of held-out same-person pairs accepted at the ``far`` threshold, all halves together (NaN without any)."""
    accepts = sum(c.true_accepts[far] for c in checks)
    pairs = sum(c.genuine_pairs for c in checks)
    return accepts / pairs if pairs else math.nan


@dataclass(frozen=True)
class CalibrationRun:
    calibration: Calibration
    checks: list[HeldOutCheck]
    #: Halves not checked: the fit half or the other had too few pairs for the rates asked (small populations).
    skipped: int = 0
    #: Cohort-normalised runs: the cohort the scores are normalised against (its file is written beside the
    #: calibration), and the raw-distance checks on the same halves, for comparison with ``checks``.
    cohort: CohortNorm | None = None
    raw_checks: list[HeldOutCheck] = field(default_factory=list)

    def pooled_ratio(self, far: str) -> float:
        """Measured / nominal false-accept rate over all held-out halves together (NaN without any)."""
        return pooled_ratio(self.checks, far)


def _fit(
    vectors: np.ndarray,
    names: np.ndarray,
    info: dict[str, Any] | None,
    levels: tuple[str, ...],
    shift: np.ndarray | None = None,
) -> Calibration:
    genuine, impostor = pair_distances(vectors, names, shift)
    return fit_calibration(genuine, impostor, info, levels)


def _check(
    vectors: np.ndarray,
    names: np.ndarray,
    fit_sel: np.ndarray,
    levels: tuple[str, ...],
    split: str,
    shift: np.ndarray | None = None,
) -> HeldOutCheck:
    """Fit on the ``fit_sel`` faces, count accepts among the other faces' pairs."""
    part = (lambda sel: None) if shift is None else (lambda sel: shift[sel])
    genuine, impostor = pair_distances(vectors[~fit_sel], names[~fit_sel], part(~fit_sel))
    fitted = _fit(vectors[fit_sel], names[fit_sel], None, levels, part(fit_sel))
    false_accepts = {far: int(np.sum(impostor <= d)) for far, d in fitted.threshold_distances.items()}
    true_accepts = {far: int(np.sum(genuine <= d)) for far, d in fitted.threshold_distances.items()}
    return HeldOutCheck(split, false_accepts, int(len(impostor)), true_accepts, int(len(genuine)))


def _held_out(
    vectors: np.ndarray,
    names: np.ndarray,
    levels: tuple[str, ...],
    min_false_accepts: int,
    salts: int,
    shift: np.ndarray | None = None,
) -> tuple[list[HeldOutCheck], list[HeldOutCheck], int]:
    """Checks on ``salts`` identity splits, both ways round: (checks, raw-distance checks when ``shift``, skipped)."""
    checks: list[HeldOutCheck] = []
    raw: list[HeldOutCheck] = []
    skipped = 0
    for salt in range(salts):
        held = np.array([holdout(n, salt) for n in names])
        for label, fit_sel in ((f"{salt}a", ~held), (f"{salt}b", held)):
            try:
                check_pairs(names[fit_sel].tolist(), levels, min_false_accepts)
                _, held_out = pair_counts(names[~fit_sel].tolist())
                if any(held_out < needed_impostor_pairs(far, min_false_accepts) for far in levels):
                    raise NotEnoughPairs("the other half cannot show a rate that rare either")
            except NotEnoughPairs:
                skipped += 1
                continue
            checks.append(_check(vectors, names, fit_sel, levels, label, shift))
            if shift is not None:
                raw.append(_check(vectors, names, fit_sel, levels, label))
    return checks, raw, skipped


def _found(labels: Sequence[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(names, vectors) of the rows with a face (NaN rows are faces not found)."""
    names = np.asarray(list(labels), dtype=object).astype(str)
    ok = ~np.isnan(vectors).any(1)
    return names[ok], vectors[ok]


def calibrate(
    labels: Sequence[str],
    vectors: np.ndarray,
    info: dict[str, Any],
    salts: int = 6,
    levels: Sequence[str] = FAR_LEVELS,
    min_false_accepts: int = DEFAULT_MIN_FALSE_ACCEPTS,
) -> CalibrationRun:
    """Fit on all identities; check on held-out identity halves (both ways round, ``salts`` splits).

    ``labels[i]`` is the identity of ``vectors[i]`` (a folder name, a user_id); rows with NaN are faces not
    found and are left out. Raises :class:`NotEnoughPairs` before any work when the rates cannot be measured.
    """
    levels = tuple(levels)
    names, vectors = _found(labels, vectors)
    check_pairs(names.tolist(), levels, min_false_accepts)
    info = {
        **info,
        "identities": int(len(set(names))),
        "images": int(len(names)),
        "min_false_accepts": int(min_false_accepts),
    }
    calibration = _fit(vectors, names, info, levels)
    checks, _, skipped = _held_out(vectors, names, levels, min_false_accepts, salts)
    return CalibrationRun(calibration, checks, skipped)


def default_cohort_size(identities: int) -> int:
    """Cohort faces by default: one identity in :data:`COHORT_SHARE`, at most :data:`MAX_COHORT`."""
    return min(MAX_COHORT, identities // COHORT_SHARE)


def cohort_identities(names: Sequence[str], size: int) -> set[str]:
    """``size`` identities for the cohort, by a hash of the name (not the held-out splits' hash: independent)."""
    ordered = sorted(set(names), key=lambda n: hashlib.sha1(f"cohort:{n}".encode()).hexdigest())
    return set(ordered[:size])


def cohort_faces(vectors: np.ndarray, names: np.ndarray, chosen: set[str]) -> np.ndarray:
    """Row of one face of each ``chosen`` identity: the one nearest the mean of that person's faces.

    A typical photo of the person rather than an outlier, and the same face whatever order the faces come in,
    so the folder and FaceSet forms build the same cohort from the same people.
    """
    rows = []
    for name in sorted(chosen):
        own = np.flatnonzero(names == name)
        mean = vectors[own].astype(np.float64).mean(0)
        rows.append(own[int(np.argmin(np.linalg.norm(vectors[own] - mean, axis=1)))])
    return np.array(rows, dtype=np.int64)


def cohort_k(size: int, k: int | None = None) -> int:
    """Neighbours per face: ``k`` if given, else :data:`DEFAULT_COHORT_K` or fewer, one per
    :data:`MIN_COHORT_PER_K` cohort faces."""
    return k if k is not None else max(1, min(DEFAULT_COHORT_K, size // MIN_COHORT_PER_K))


def check_cohort(names: Sequence[str], size: int, k: int) -> None:
    """:class:`NotEnoughPairs` unless a cohort of ``size`` faces is large enough for ``k`` neighbours and leaves
    people for the pairs."""
    identities = len(set(names))
    least = max(MIN_COHORT, MIN_COHORT_PER_K * k)
    if least <= size < identities:
        return
    raise NotEnoughPairs(
        f"{len(names)} faces of {identities} identities: a cohort-normalised calibration puts one face each of "
        f"{size} of them in the cohort (--cohort-size; default 1 identity in {COHORT_SHARE}, at most {MAX_COHORT}) "
        f"and measures its thresholds on the other identities' pairs. The cohort needs at least {least} faces "
        f"({MIN_COHORT} at least, and {MIN_COHORT_PER_K} per neighbour: k = {k}; smaller cohorts lowered held-out TAR "
        f"on lfw-dev) and must leave identities for the pairs: at least {MIN_COHORT * COHORT_SHARE} identities "
        f"with the default size, or --cohort-size {MIN_COHORT} and more identities than that (then the pair counts "
        f"are checked as usual)."
    )


def calibrate_cohort(
    labels: Sequence[str],
    vectors: np.ndarray,
    info: dict[str, Any],
    salts: int = 6,
    levels: Sequence[str] = FAR_LEVELS,
    min_false_accepts: int = DEFAULT_MIN_FALSE_ACCEPTS,
    k: int | None = None,
    cohort_size: int | None = None,
) -> CalibrationRun:
    """A cohort-normalised calibration on the operator's own people, checked on held-out identity halves.

    The cohort is one face of each of ``cohort_size`` identities (chosen by a hash of the name; default: one in
    :data:`COHORT_SHARE`, at most :data:`MAX_COHORT`; ``k`` by default from :func:`cohort_k`), and those
    identities are **kept out of the pairs**. A person with a face in the cohort finds that photo of themselves
    among their nearest neighbours (the face itself, at distance 0, is never counted: :class:`CohortNorm`),
    which lowers their density and lifts their normalised distances; leaving only the cohort face out of the
    pairs would fit that bias into the thresholds. Serving computes densities without labels, so the pairs
    measure what serving does for everyone not in the cohort (people in it are scored a little more strictly;
    docs/ENGINE.md measures by how much). Thresholds and the held-out check run on the remaining identities,
    with every face's density against the whole (fixed) cohort; raw distances are checked on the same halves
    (``raw_checks``) for comparison. Refuses, before any work, a population too small for the cohort
    (:func:`check_cohort`) or, once the cohort is set aside, for the rates asked (:func:`check_pairs`).
    """
    levels = tuple(levels)
    names, vectors = _found(labels, vectors)
    size = default_cohort_size(len(set(names))) if cohort_size is None else cohort_size
    k = cohort_k(size, k)
    check_cohort(names.tolist(), size, k)
    chosen = cohort_identities(names.tolist(), size)
    rows = cohort_faces(vectors, names, chosen)
    cohort = CohortNorm.build(vectors[rows], k, names[rows])
    pairs = ~np.isin(names, sorted(chosen))
    vectors, names = vectors[pairs], names[pairs]
    try:
        check_pairs(names.tolist(), levels, min_false_accepts)
    except NotEnoughPairs as exc:
        raise NotEnoughPairs(f"with {size} identities set aside for the cohort, {exc}") from None
    shift = cohort.density(vectors) - cohort.reference
    info = {
        **info,
        "identities": int(len(set(names))),
        "images": int(len(names)),
        "cohort_identities": int(size),
        "min_false_accepts": int(min_false_accepts),
    }
    normalization = {"method": "cohort-shift", "cohort": "", "k": int(k), "reference": float(cohort.reference)}
    calibration = replace(_fit(vectors, names, info, levels, shift), normalization=normalization)
    checks, raw_checks, skipped = _held_out(vectors, names, levels, min_false_accepts, salts, shift)
    return CalibrationRun(calibration, checks, skipped, cohort, raw_checks)


def image_list(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).glob("*/*.jpg"))


def folder_identities(paths: Sequence[str]) -> list[str]:
    """The identity of each ``<identity>/<image>.jpg`` path: its folder."""
    return [p.split("/")[0] for p in paths]


@dataclass
class FaceSetSample:
    """A FaceSet's labelled faces as calibration input, and what was left out and why."""

    labels: list[str]
    vectors: np.ndarray
    members: int
    unlabelled: int = 0  # no user_id: left out (may be anyone, even a labelled person)
    beside_largest: int = 0  # faceplus index's 2nd, 3rd... face of a photo: they carry the folder's user_id
    sampled_out: int = 0  # faces of identities left out to stay within max_faces


def faceset_sample(store: Any, tenant: str, faceset_token: str, max_faces: int = 10_000) -> FaceSetSample:
    """The FaceSet's faces with a user_id, as (identity, embedding), read through the store interface.

    Faces without a user_id are left out, not used as impostors: an unlabelled face may be one of the
    labelled people or a repeat of another unlabelled one, and such pairs would sit in the impostor tail
    exactly where the thresholds are measured (UTKFace's repeated people did that to its rates; docs/ENGINE.md).
    ``faceplus index --user-id-from-folder`` gives every face of a photo its folder's name, so only the
    largest face of each indexed photo is kept (the ledger says which that is), as ``cluster --eval`` does.
    All pairs are compared (n^2 / 2 distances), so beyond ``max_faces`` whole identities are left out, chosen
    by a hash of the user_id (the same ones every run).
    """
    from faceplus.tools.indexing import Ledger

    members = store.facesets.vectors(tenant, faceset_token)
    user_ids: dict[str, str] = {}
    for start in range(0, len(members.tokens), 500):
        user_ids.update(store.faces.user_ids(tenant, members.tokens[start : start + 500]))
    sources = Ledger(store).sources(tenant, faceset_token)
    keep, unlabelled, beside = [], 0, 0
    for row, token in enumerate(members.tokens):
        if not user_ids.get(token):
            unlabelled += 1
        elif sources.get(token, ("", 0))[1] > 0:
            beside += 1
        else:
            keep.append(row)
    labels = [user_ids[members.tokens[row]] for row in keep]
    sampled_out = 0
    if len(keep) > max_faces:
        counts = Counter(labels)
        chosen, total = set(), 0
        for name in sorted(counts, key=lambda n: hashlib.sha1(n.encode()).hexdigest()):
            if total + counts[name] <= max_faces:
                chosen.add(name)
                total += counts[name]
        rows = [i for i, name in enumerate(labels) if name in chosen]
        sampled_out = len(keep) - len(rows)
        keep, labels = [keep[i] for i in rows], [labels[i] for i in rows]
    vectors = members.vectors[keep].astype(np.float32)
    return FaceSetSample(labels, vectors, len(members.tokens), unlabelled, beside, sampled_out)
