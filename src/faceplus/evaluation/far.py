"""``faceplus eval far``: false-accept rates at the shipped thresholds, per demographic group and image source.

The thresholds "1e-3/1e-4/1e-5" are calibrated on lfw-dev impostor pairs. This measures what they
give elsewhere: every cross-person pair of a labelled folder is an impostor pair, and the share of
them a threshold accepts is its false-accept rate (FAR) for that population. UTKFace has no identity
labels; each image is taken to be a different person (a few recur, so its figures slightly over-state FAR).

Faces are embedded exactly as ``compare`` does (``Engine.main_face``: the largest face, 68-point chip,
flip TTA, unit length); images where no detector finds a face are counted and left out.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from faceplus.calibration import Calibration, CohortNorm, fit_calibration
from faceplus.private_files import save_private_npz

RACES = ("white", "black", "asian", "indian", "others")
GENDERS = ("male", "female")


# -- labels -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    """One labelled image: its path under the root, and UTKFace's age, gender and race labels."""

    path: str
    age: int
    gender: str
    race: str


def parse_utkface_name(path: str) -> Person | None:
    """``age_gender_race_date.jpg[.chip.jpg]`` (gender 0 male 1 female; race 0-4); None if malformed."""
    parts = Path(path).name.split("_")
    try:
        age, gender, race = int(parts[0]), int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return None
    if gender not in (0, 1) or not 0 <= race < len(RACES):
        return None
    return Person(path, age, GENDERS[gender], RACES[race])


def utkface_people(root: Path) -> tuple[list[Person], int]:
    """Every image under ``root`` with UTKFace file-name labels, and how many names did not parse."""
    files = sorted(str(p.relative_to(root)) for p in Path(root).rglob("*.jpg"))
    people = [parse_utkface_name(f) for f in files]
    return [p for p in people if p is not None], sum(p is None for p in people)


# -- embedding (the compare pipeline) ------------------------------------------------------------
@dataclass
class Embedded:
    """Per image: unit embedding (NaN row where no face), faces found, the detector of the chosen face."""

    paths: list[str]
    vectors: np.ndarray
    faces: np.ndarray
    detector: list[str]

    def save(self, path: Path) -> None:
        save_private_npz(
            path, paths=np.array(self.paths), vectors=self.vectors, faces=self.faces, detector=np.array(self.detector)
        )

    @classmethod
    def load(cls, path: Path) -> Embedded:
        with np.load(path) as data:
            return cls(list(data["paths"]), data["vectors"], data["faces"], list(data["detector"]))

    def select(self, paths: list[str]) -> Embedded:
        index = {p: i for i, p in enumerate(self.paths)}
        rows = [index[p] for p in paths]
        return Embedded(paths, self.vectors[rows], self.faces[rows], [self.detector[i] for i in rows])


_engine = None


def _init(detector: str | None) -> None:
    global _engine
    from dataclasses import replace

    from faceplus.engine import Engine
    from faceplus.settings import Settings

    settings = Settings.from_env()
    if detector:
        settings = replace(settings, detection=replace(settings.detection, detector=detector))
    _engine = Engine(settings)


def _embed(path: str) -> tuple[np.ndarray | None, int, str]:
    """The embedding compare would use for this image, how many faces detect found, and which detector."""
    assert _engine is not None
    decoded = _engine.load(path)
    faces = _engine.detect(decoded, embed=False)
    if not faces:
        return None, 0, ""
    face = faces[0]  # the largest, as Engine.main_face / compare choose
    _engine.embed_faces(decoded.rgb, [face])
    return face.embedding, len(faces), face.detector


def embed_images(
    root: Path,
    relpaths: Iterable[str],
    cache: Path | None = None,
    workers: int = 1,
    detector: str | None = None,
    progress: bool = True,
) -> Embedded:
    """Embed each image's largest face with the engine; reuse and extend ``cache`` (.npz) if given.

    The engine is ``FACEPLUS_*``'s; a cache of another embedder than the default is a file of its own.
    """
    from faceplus.evaluation.folder_embeddings import embedder_suffix
    from faceplus.settings import Settings

    if cache:
        cache = cache.with_name(f"{cache.stem}{embedder_suffix(Settings.from_env().embedder)}{cache.suffix}")
    relpaths = list(dict.fromkeys(relpaths))
    done = (
        Embedded.load(cache)
        if cache and cache.is_file()
        else Embedded([], np.zeros((0, 128), np.float32), np.zeros(0, int), [])
    )
    known = set(done.paths)
    todo = [p for p in relpaths if p not in known]
    if todo:
        vectors, faces, detectors = [], [], []
        if workers <= 1:
            _init(detector)
            results: Iterator = map(_embed, [str(root / p) for p in todo])
            pool = None
        else:
            pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_init, initargs=(detector,)
            )
            results = pool.map(_embed, [str(root / p) for p in todo], chunksize=8)
        try:
            for vector, n, found_by in tqdm(
                results, total=len(todo), disable=not progress, desc="embedding", unit="img"
            ):
                vectors.append(np.full(128, np.nan, np.float32) if vector is None else vector)
                faces.append(n)
                detectors.append(found_by)
        finally:
            if pool is not None:
                pool.shutdown()
        done = Embedded(
            done.paths + todo,
            np.concatenate([done.vectors, np.stack(vectors).astype(np.float32)]),
            np.concatenate([done.faces, np.array(faces, int)]),
            done.detector + detectors,
        )
        if cache:
            done.save(cache)
    return done.select(relpaths)


# -- statistics ----------------------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval for a rate of k in n.

    Pairs share images, so they are not independent draws: the interval is a lower bound on the uncertainty.
    """
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def enough_pairs(n: int, far: float, within: float = 3.0) -> bool:
    """Whether ``n`` pairs can show a rate within ``within`` x ``far``: zero accepts would bound it there."""
    return wilson(0, n)[1] <= within * far


def pair_matrix(vectors: np.ndarray) -> np.ndarray:
    """All pairwise L2 distances of unit vectors (float32)."""
    v = vectors.astype(np.float32)
    return np.sqrt(np.maximum(2.0 - 2.0 * (v @ v.T), 0.0))


def upper_pairs(matrix: np.ndarray, rows: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Scores of each unordered pair among ``rows`` (indices), dropping pairs with the same label."""
    sub = matrix[np.ix_(rows, rows)]
    keep = np.triu(np.ones(sub.shape, bool), 1)
    if labels is not None:
        keep &= labels[rows, None] != labels[None, rows]
    return sub[keep]


@dataclass(frozen=True)
class GroupFar:
    """False accepts at each threshold among one group's impostor pairs."""

    group: str
    pairs: int
    accepts: dict[str, int]

    def rate(self, far: str) -> float:
        return self.accepts[far] / self.pairs if self.pairs else float("nan")

    def ratio(self, far: str) -> float:
        return self.rate(far) / float(far)

    def ratio_interval(self, far: str) -> tuple[float, float]:
        low, high = wilson(self.accepts[far], self.pairs)
        return low / float(far), high / float(far)

    def __add__(self, other: GroupFar) -> GroupFar:
        return GroupFar(
            self.group, self.pairs + other.pairs, {f: self.accepts[f] + other.accepts[f] for f in self.accepts}
        )


def count_accepts(scores: np.ndarray, thresholds: dict[str, float]) -> dict[str, int]:
    """Pairs accepted (score <= threshold distance) at each FAR threshold."""
    return {far: int(np.count_nonzero(scores <= d)) for far, d in thresholds.items()}


def groups(people: list[Person]) -> list[tuple[str, np.ndarray]]:
    """all, each race, each gender, each race x gender: (name, boolean mask over ``people``)."""
    race = np.array([p.race for p in people])
    gender = np.array([p.gender for p in people])
    out = [("all", np.ones(len(people), bool))]
    out += [(r, race == r) for r in RACES]
    out += [("women" if g == "female" else "men", gender == g) for g in GENDERS]
    out += [(f"{r} {'women' if g == 'female' else 'men'}", (race == r) & (gender == g)) for r in RACES for g in GENDERS]
    return out


def group_far(
    matrix: np.ndarray, people: list[Person], rows: np.ndarray, thresholds: dict[str, float]
) -> list[GroupFar]:
    """Per group: impostor pairs among ``rows`` (indices into ``people``/``matrix``) and false accepts."""
    out = []
    selected = np.zeros(len(people), bool)
    selected[rows] = True
    for name, mask in groups(people):
        scores = upper_pairs(matrix, np.flatnonzero(mask & selected))
        out.append(GroupFar(name, len(scores), count_accepts(scores, thresholds)))
    return out


def format_table(title: str, rows: list[GroupFar], fars: tuple[str, ...]) -> str:
    """Markdown table: pairs, and per threshold FAR/nominal with its 95% interval."""
    head = "| group | impostor pairs | " + " | ".join(f'"{f}": FAR/nominal [95% CI]' for f in fars) + " |"
    lines = [f"{title}", "", head, "|---|---:|" + "---:|" * len(fars)]
    for g in rows:
        if g.pairs == 0:
            continue
        cells = []
        for far in fars:
            low, high = g.ratio_interval(far)
            mark = "" if enough_pairs(g.pairs, float(far)) else "*"
            cells.append(f"{g.ratio(far):.2g}x [{low:.2g}-{high:.2g}]{mark}")
        lines.append(f"| {g.group} | {g.pairs:,} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(* too few pairs: zero false accepts would not bound the rate within 3x nominal)")
    return "\n".join(lines)


def half_split(keys: Iterable[str], salt: int = 0) -> np.ndarray:
    """The deterministic 50/50 split ``faceplus calibrate`` uses (a salted hash of each key)."""
    from faceplus.evaluation.calibrate import holdout

    return np.array([holdout(k, salt) for k in keys])


# -- the command -----------------------------------------------------------------------------------
def embedding_summary(embedded: Embedded) -> str:
    """How many images had no face, more than one, and which detector found the face used."""
    found = ~np.isnan(embedded.vectors).any(1)
    counts: dict[str, int] = {}
    for d in embedded.detector:
        counts[d or "none"] = counts.get(d or "none", 0) + 1
    return (
        f"{len(embedded.paths)} images: {int((~found).sum())} with no face found (left out), "
        f"{int((embedded.faces > 1).sum())} with more than one face (the largest is used, as compare does); "
        "face found by " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    )


def lfw_source(root: Path, cache: Path | None, workers: int | None, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """lfw-dev's unit embeddings (faces found) and identity names, via the helpers ``eval lfw`` uses."""
    from faceplus.evaluation.calibrate import image_list
    from faceplus.evaluation.folder_embeddings import embed_folder

    embeddings = embed_folder(root, image_list(root), workers=workers, cache=cache, detector=detector)
    vectors = embeddings.vectors()
    found = ~np.isnan(vectors).any(1)
    names = np.array([p.split("/")[0] for p in embeddings.paths])
    return vectors[found], names[found]


def cmd_eval_far(args: argparse.Namespace) -> int:
    """``faceplus eval far``: the per-group table at the shipped thresholds, then (with --lfw) per source."""
    from faceplus.calibration import FAR_LEVELS, default_calibration
    from faceplus.evaluation.calibrate import pair_distances

    root = Path(args.root)
    people, malformed = utkface_people(root)
    print(f"{root}: {len(people)} images with UTKFace file-name labels ({malformed} names did not parse)")
    workers = args.workers or 1
    embedded = embed_images(root, [p.path for p in people], args.cache, workers, args.detector)
    print(embedding_summary(embedded))
    found = ~np.isnan(embedded.vectors).any(1)
    keep = found & np.array([p.age >= args.min_age for p in people])
    people = [p for p, k in zip(people, keep, strict=True) if k]
    vectors = embedded.vectors[keep]
    calibration = default_calibration()
    thresholds = calibration.threshold_distances
    where = calibration.info.get("data", "?")
    print(f"{len(people)} faces aged {args.min_age}+; every pair of two images counts as an impostor pair")
    print()
    rows = group_far(pair_matrix(vectors), people, np.arange(len(people)), thresholds)
    print(format_table(f"Shipped thresholds (calibrated on {where}) on {root.name}:", rows, FAR_LEVELS))
    if args.lfw:
        lfw_vectors, names = lfw_source(Path(args.lfw), args.lfw_cache, args.workers, args.detector)
        genuine, impostor = pair_distances(lfw_vectors, names)
        lfw = GroupFar("all cross-identity pairs", len(impostor), count_accepts(impostor, thresholds))
        print()
        note = " (the pairs the thresholds were fit on)" if Path(args.lfw).name == where else ""
        print(format_table(f"Shipped thresholds on {Path(args.lfw).name}{note}:", [lfw], FAR_LEVELS))
        tar = " ".join(f'"{f}": {np.mean(genuine <= d) * 100:.2f}%' for f, d in thresholds.items())
        print(f"TAR on its {len(genuine):,} same-person pairs: {tar}")
        if args.heldout:
            found_people = [p for p, f in zip(utkface_people(root)[0], found, strict=True) if f]
            study = Study(found_people, embedded.vectors[found], lfw_vectors, names, args.min_age)
            print()
            print(
                f"Held out: thresholds fit on one half (UTKFace by image, {Path(args.lfw).name} by identity), "
                "false accepts counted on the other half, both ways round and pooled."
            )
            cohort = f"k={args.k}, cohort: <= {args.per_group} UTKFace adults per race x gender of the fit half"
            pooled = dict(matched=True, fit_on=("utkface", "lfw"))
            normalised = dict(k=args.k, cohort_from=tuple(args.cohort), per_group=args.per_group)
            steps: list[tuple[str, dict[str, Any]]] = [
                ("1. shipped thresholds (all of lfw-dev, raw distance)", dict(calibration=calibration)),
                ("2. raw distance, thresholds refit on the lfw-dev fit half", dict(fit_on=("lfw",))),
                ("3. raw distance, fit on lfw-dev + UTKFace same race x gender impostors (equal weight)", pooled),
                (f"4. cohort-normalised ({cohort}), fit on the lfw-dev fit half", {**normalised, "fit_on": ("lfw",)}),
                ("5. cohort-normalised, fit as in 3", {**normalised, **pooled}),
            ]
            for label, options in steps:
                print()
                print(format_result(heldout(study, label, **options), FAR_LEVELS))
            if args.strength:
                print()
                print('Step 4 with its shift scaled by "strength" (1 = step 4): held-out FAR/nominal at "1e-4"')
                print(strength_sweep(study, args.strength, **normalised, fit_on=("lfw",)))
            fitted = fit_half(
                study, False, k=args.k, cohort_from=tuple(args.cohort), per_group=args.per_group, fit_on=("lfw",)
            )
            if args.pairs:
                print()
                print(lfw_ten_fold(args, fitted.norm))
            if args.save_cohort:
                save_cohort_calibration(study, fitted, args, Path(args.save_cohort))
    if getattr(args, "report", None):
        from faceplus.evaluation.report import far_report

        lfw_pairs = (genuine, impostor) if args.lfw else None
        print(f"report: {far_report(Path(args.report), root, rows, lfw_pairs, calibration, args)}")
    return 0


# -- held-out study: thresholds (and cohort) fit on one half, false accepts counted on the other -----------
@dataclass
class Study:
    """Both sources, split in halves: UTKFace by image (each a different person), LFW by identity."""

    people: list[Person]  # UTKFace images with a face
    utk: np.ndarray  # their unit embeddings
    lfw: np.ndarray  # lfw-dev unit embeddings
    names: np.ndarray  # lfw-dev identity per row
    min_age: int = 18

    def __post_init__(self) -> None:
        self.utk_half = half_split(p.path for p in self.people)
        self.lfw_half = half_split(self.names)
        self.adult = np.array([p.age >= self.min_age for p in self.people])
        self.utk_labels = np.array([f"utkface:{p.path}" for p in self.people])
        self.lfw_labels = np.array([f"lfw:{n}" for n in self.names])


@dataclass(frozen=True)
class StudyResult:
    """Held-out figures of one scoring, pooled over both ways round."""

    label: str
    groups: list[GroupFar]
    lfw: GroupFar
    genuine: int
    true_accepts: dict[str, int]

    def tar(self, far: str) -> float:
        return self.true_accepts[far] / self.genuine


def _pairs(d: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(same-identity, different-identity) scores of each unordered pair of a square score matrix."""
    iu = np.triu_indices(len(names), 1)
    scores, same = d[iu], (names[:, None] == names[None, :])[iu]
    return scores[same], scores[~same]


def balanced(people: list[Person], rows: np.ndarray, per_group: int, seed: int = 0) -> np.ndarray:
    """At most ``per_group`` of ``rows`` from each race x gender (random, reproducible): a cohort covering all."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"{people[i].race} {people[i].gender}" for i in rows])
    picked = [rng.permutation(rows[keys == key])[:per_group] for key in sorted(set(keys))]
    return np.sort(np.concatenate(picked))


def _scores(norm: CohortNorm | None, vectors: np.ndarray, m: np.ndarray | None, strength: float = 1.0) -> np.ndarray:
    """Pair-score matrix: raw distances, or normalised by each face's cohort density ``m``.

    ``strength`` scales the shift (:meth:`CohortNorm.normalize`; only the held-out sweep of ``--strength``
    uses another value than 1, to show what a stronger shift trades).
    """
    d = pair_matrix(vectors)
    if norm is None or m is None:
        return d
    return norm.normalize(d, m[:, None], m[None, :], strength).astype(np.float32)


@dataclass(frozen=True)
class Fitted:
    """A calibration fit on one half; ``norm`` (if any) is the cohort its scores are normalised against."""

    calibration: Calibration
    norm: CohortNorm | None
    cohort_labels: np.ndarray | None
    strength: float = 1.0

    def densities(self, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
        """Each face's cohort density, never counting the face (or its LFW identity) as its own neighbour."""
        return None if self.norm is None else self.norm.density(vectors, labels, self.cohort_labels)

    def scores(self, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The pair-score matrix of ``vectors`` as this fit scores pairs."""
        return _scores(self.norm, vectors, self.densities(vectors, labels), self.strength)


def fit_half(
    study: Study,
    half: bool,
    k: int = 0,
    cohort_from: tuple[str, ...] = ("utkface",),
    per_group: int = 100,
    matched: bool = False,
    fit_on: tuple[str, ...] = ("utkface", "lfw"),
    strength: float = 1.0,
) -> Fitted:
    """Fit on the images whose split flag is ``half`` (UTKFace adults and lfw-dev identities of that half).

    ``k`` = 0 scores raw distances; otherwise a :class:`CohortNorm` of the half's faces of ``cohort_from``
    (UTKFace: at most ``per_group`` adults of each race x gender) with ``k`` neighbours. Both sources weigh
    the same in the thresholds; ``matched`` keeps only UTKFace impostor pairs of the same race and gender
    (the impostors an attacker would pick, and what each group's table row measures).
    """
    utk_fit, lfw_fit = study.utk_half == half, study.lfw_half == half
    norm, cohort_labels = None, None
    if k:
        rows = balanced(study.people, np.flatnonzero(utk_fit & study.adult), per_group)
        parts = [(study.utk[rows], study.utk_labels[rows])] if "utkface" in cohort_from else []
        parts += [(study.lfw[lfw_fit], study.lfw_labels[lfw_fit])] if "lfw" in cohort_from else []
        cohort_labels = np.concatenate([p[1] for p in parts])
        norm = CohortNorm.build(np.concatenate([p[0] for p in parts]), k, cohort_labels)
    fitted = Fitted(Calibration(0, 1, {}), norm, cohort_labels, strength)
    lfw_rows = np.flatnonzero(lfw_fit)
    genuine, lfw_impostor = _pairs(
        fitted.scores(study.lfw[lfw_rows], study.lfw_labels[lfw_rows]), study.names[lfw_rows]
    )
    utk_rows = np.flatnonzero(utk_fit & study.adult)
    upper = np.triu_indices(len(utk_rows), 1)
    utk_impostor = fitted.scores(study.utk[utk_rows], study.utk_labels[utk_rows])[upper]
    if matched:
        group = np.array([f"{study.people[i].race} {study.people[i].gender}" for i in utk_rows])
        utk_impostor = utk_impostor[(group[:, None] == group[None, :])[upper]]
    sets = {"utkface": utk_impostor, "lfw": lfw_impostor}
    info = {f"{name}_impostor_pairs": int(len(sets[name])) for name in fit_on}
    impostor = [sets[name] for name in fit_on]
    calibration = fit_calibration(genuine, impostor if len(impostor) > 1 else impostor[0], info)
    return Fitted(calibration, norm, cohort_labels, strength)


def heldout(study: Study, label: str, calibration: Calibration | None = None, **options: Any) -> StudyResult:
    """Fit on one half (:func:`fit_half` ``options``), count on the other, both ways round, pooled.

    A given ``calibration`` (raw distances) is used as it is: the shipped one, for the baseline.
    """
    totals: dict[str, GroupFar] = {}
    lfw_total: GroupFar | None = None
    genuine_total, true_accepts = 0, dict.fromkeys(("1e-3", "1e-4", "1e-5"), 0)
    for half in (False, True):
        fitted = fit_half(study, half, **options) if calibration is None else Fitted(calibration, None, None)
        thresholds = fitted.calibration.threshold_distances
        test = np.flatnonzero((study.utk_half != half) & study.adult)
        d = fitted.scores(study.utk[test], study.utk_labels[test])
        for g in group_far(d, [study.people[i] for i in test], np.arange(len(test)), thresholds):
            totals[g.group] = totals[g.group] + g if g.group in totals else g
        test = np.flatnonzero(study.lfw_half != half)
        genuine, impostor = _pairs(fitted.scores(study.lfw[test], study.lfw_labels[test]), study.names[test])
        lfw = GroupFar("lfw-dev", len(impostor), count_accepts(impostor, thresholds))
        lfw_total = lfw if lfw_total is None else lfw_total + lfw
        genuine_total += len(genuine)
        for far, accepted in count_accepts(genuine, thresholds).items():
            true_accepts[far] += accepted
    assert lfw_total is not None
    return StudyResult(label, list(totals.values()), lfw_total, genuine_total, true_accepts)


def strength_sweep(study: Study, strengths: list[float], **options: Any) -> str:
    """Held-out FAR/nominal at "1e-4" per race x gender, lfw-dev FAR and TAR, for each cohort-shift strength.

    What a stronger shift than :class:`CohortNorm`'s (strength 1) trades: groups move together, and TAR on
    lfw-dev falls. Every row is held out as in :func:`heldout`; no strength is chosen from this table.
    """
    results = [heldout(study, f"strength {s:g}", strength=s, **options) for s in strengths]
    names = [g.group for g in results[0].groups if " " in g.group and enough_pairs(g.pairs, 1e-4)]
    lines = [
        "| strength | " + " | ".join(names) + ' | lfw-dev "1e-3" / "1e-4" | TAR "1e-3" / "1e-4" / "1e-5" |',
        "|---:|" + "---:|" * (len(names) + 2),
    ]
    for strength, result in zip(strengths, results, strict=True):
        by_name = {g.group: g for g in result.groups}
        cells = [f"{by_name[n].ratio('1e-4'):.2g}x" for n in names]
        lfw = f"{result.lfw.ratio('1e-3'):.2g}x / {result.lfw.ratio('1e-4'):.2g}x"
        tar = " / ".join(f"{result.tar(f) * 100:.1f}%" for f in ("1e-3", "1e-4", "1e-5"))
        lines.append(f"| {strength:g} | " + " | ".join(cells) + f" | {lfw} | {tar} |")
    return "\n".join(lines)


def format_result(result: StudyResult, fars: tuple[str, ...]) -> str:
    """A held-out per-group table, the held-out lfw-dev impostors as one more row, and TAR."""
    table = format_table(f"{result.label}:", [*result.groups, result.lfw], fars)
    tar = ", ".join(f'"{f}" {result.tar(f) * 100:.2f}%' for f in fars)
    return f"{table}\nTAR on {result.genuine:,} held-out lfw-dev same-person pairs: {tar}"


def lfw_ten_fold(args: argparse.Namespace, norm: CohortNorm | None) -> str:
    """LFW 10-fold accuracy on ``args.pairs``, raw and cohort-normalised (the cohort holds no LFW face)."""
    from faceplus.evaluation.folder_embeddings import embed_folder
    from faceplus.evaluation.lfw import read_pairs, ten_fold

    pairs = read_pairs(args.pairs)
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    embeddings = embed_folder(
        Path(args.lfw), images, workers=args.workers, cache=args.lfw_cache, detector=args.detector
    )
    vectors = embeddings.vectors()
    index = embeddings.index()
    a = vectors[[index[p.image1] for p in pairs]]
    b = vectors[[index[p.image2] for p in pairs]]
    missing = np.isnan(a).any(1) | np.isnan(b).any(1)
    a, b = np.where(missing[:, None], 1.0, np.nan_to_num(a)), np.where(missing[:, None], 1.0, np.nan_to_num(b))
    raw = np.linalg.norm(a - b, axis=1)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    lines = [f"LFW 10-fold on {Path(args.pairs).name} ({int(missing.sum())} pairs with a face missing: rejections)"]
    candidates = [("raw distance", raw)]
    if norm is not None:
        candidates.append(("cohort-normalised", norm.normalize(raw, norm.density(a), norm.density(b))))
    for label, scores in candidates:
        accuracy = np.array(ten_fold(np.where(missing, -np.inf, -scores), same, folds))
        lines.append(f"  {label}: {accuracy.mean() * 100:.2f}% +- {accuracy.std() * 100:.2f}%")
    return "\n".join(lines)


def save_cohort_calibration(study: Study, fitted: Fitted, args: argparse.Namespace, out: Path) -> Calibration:
    """Fit step 4 on the first halves only and write it (``out`` and a ``cohort.npz`` beside it).

    The second half stays unseen, so the table printed here is the written file's own held-out check.
    """
    import sys
    import time

    assert fitted.norm is not None
    cohort_file = out.with_name("cohort.npz")
    fitted.norm.save(cohort_file)
    packaged = out.parent.resolve() == Path(__file__).resolve().parents[1] / "data"
    cal = fitted.calibration
    sources = f"{Path(args.root).name} first half (adults)"
    info = {
        **cal.info,
        "calibrated_on": f"lfw-dev impostor pairs (first half of identities), cohort-normalised; cohort: {sources}",
        "command": "faceplus eval far " + " ".join(sys.argv[3:]),
        "cohort": f"{len(fitted.norm.vectors)} UTKFace faces (<= {args.per_group} per race x gender, first half); "
        "UTKFace is for non-commercial research only",
        "date": time.strftime("%Y-%m-%d"),
    }
    normalization = {
        "method": "cohort-shift",
        "cohort": cohort_file.name if packaged else str(cohort_file.resolve()),
        "k": args.k,
        "reference": fitted.norm.reference,
    }
    written = Calibration(cal.midpoint, cal.scale, cal.threshold_distances, info, normalization)
    written.save(out)
    thresholds = written.threshold_distances
    test = np.flatnonzero(study.utk_half & study.adult)
    d = fitted.scores(study.utk[test], study.utk_labels[test])
    rows = group_far(d, [study.people[i] for i in test], np.arange(len(test)), thresholds)
    lfw_test = np.flatnonzero(study.lfw_half)
    genuine, impostor = _pairs(fitted.scores(study.lfw[lfw_test], study.lfw_labels[lfw_test]), study.names[lfw_test])
    lfw = GroupFar("lfw-dev", len(impostor), count_accepts(impostor, thresholds))
    result = StudyResult(
        f"Written {out.name}, on the second halves it never saw",
        rows,
        lfw,
        len(genuine),
        count_accepts(genuine, thresholds),
    )
    print()
    print(format_result(result, tuple(thresholds)))
    print(f"wrote {out} and {cohort_file} ({cohort_file.stat().st_size:,} bytes)")
    return written
