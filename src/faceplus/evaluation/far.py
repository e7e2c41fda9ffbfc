"""``faceplus eval far``: false-accept rates per demographic group and image source, at calibrated thresholds.

The thresholds "1e-3/1e-4/1e-5" are calibrated on one population (SFace's shipped ones: fairface-dev's first
half, ``faceplus calibrate --groups``; dlib ResNet's: lfw-dev). This measures what they give elsewhere: every
cross-person pair of a labelled folder is an impostor pair, and the share of them a threshold accepts is its
false-accept rate (FAR) for that population. The folder is UTKFace
(labels in the file names) or FairFace (``labels.csv``); neither has identity labels, so each image is
taken to be a different person (UTKFace repeats a few people, so its figures slightly over-state FAR).
:mod:`faceplus.evaluation.populations` reads the labels.

Faces are embedded exactly as ``compare`` does (the largest face, the engine's chip and identity model);
images where no detector finds a face are counted and left out. Held out (``--heldout``), a cohort for
score normalisation is built from one half of the folder and everything is counted on the other half.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from faceplus.calibration import FAR_LEVELS, Calibration, CohortNorm, fit_calibration
from faceplus.evaluation.folder_embeddings import cache_path, check_model
from faceplus.evaluation.populations import TERMS, Person, groups, is_race_gender, labelled_people, spread
from faceplus.private_files import save_private_npz
from faceplus.settings import EngineSettings


# -- embedding (the compare pipeline) ------------------------------------------------------------
@dataclass
class Embedded:
    """Per image: unit embedding (NaN row where no face), faces found, the detector of the chosen face."""

    paths: list[str]
    vectors: np.ndarray
    faces: np.ndarray
    detector: list[str]
    model_id: str = ""  # the identity model that made ``vectors`` (Engine.model_id)

    def save(self, path: Path) -> None:
        save_private_npz(
            path,
            paths=np.array(self.paths),
            vectors=self.vectors,
            faces=self.faces,
            detector=np.array(self.detector),
            model_id=np.array(self.model_id),
        )

    @classmethod
    def load(cls, path: Path, model_id: str | None = None) -> Embedded:
        """A cache file; with ``model_id``, one made by another identity model is refused (never mixed)."""
        with np.load(path) as data:
            if "model_id" not in data.files:
                raise ValueError(f"{path} was written by an older faceplus (no model id); delete it")
            made_by = str(data["model_id"])
            check_model(path, made_by, model_id)
            return cls(list(data["paths"]), data["vectors"], data["faces"], list(data["detector"]), made_by)

    def select(self, paths: list[str]) -> Embedded:
        index = {p: i for i, p in enumerate(self.paths)}
        rows = [index[p] for p in paths]
        return Embedded(paths, self.vectors[rows], self.faces[rows], [self.detector[i] for i in rows], self.model_id)

    @property
    def found(self) -> np.ndarray:
        """Per image: whether a face was found (its row is not NaN)."""
        return np.asarray(~np.isnan(self.vectors).any(1))


_engine = None


def _engine_of(settings: EngineSettings) -> tuple[str, str]:
    """The model id and primary detector of the engine that embeds (nothing loaded)."""
    from faceplus.engine import Engine

    return Engine(settings).model_id, settings.detection.detector


def _init(settings: EngineSettings) -> None:
    global _engine
    from faceplus.engine import Engine

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
    settings: EngineSettings | None = None,
    progress: bool = True,
) -> Embedded:
    """Embed each image's largest face with an engine of ``settings``; reuse and extend ``cache`` (.npz) if given.

    The cache is one file per identity model, primary detector and landmark
    source (:func:`~faceplus.evaluation.folder_embeddings.cache_path`), so two models' vectors never mix.
    """
    settings = settings or EngineSettings()
    model_id, primary = _engine_of(settings)
    if cache:
        cache = cache_path(cache, model_id, primary, settings.landmarks)
    relpaths = list(dict.fromkeys(relpaths))
    done = (
        Embedded.load(cache, model_id)
        if cache and cache.is_file()
        else Embedded([], np.zeros((0, 128), np.float32), np.zeros(0, int), [], model_id)
    )
    known = set(done.paths)
    todo = [p for p in relpaths if p not in known]
    if todo:
        vectors, faces, detectors = [], [], []
        if workers <= 1:
            _init(settings)
            results: Iterator[Any] = map(_embed, [str(root / p) for p in todo])
            pool = None
        else:
            pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_init, initargs=(settings,)
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
            model_id,
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
    # None accepted (or all): the bound is exactly 0 (1); the formula leaves rounding residue (3e-18 at n = 88).
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def enough_pairs(n: int, far: float, within: float = 3.0) -> bool:
    """Whether ``n`` pairs can show a rate within ``within`` x ``far``: zero accepts would bound it there."""
    return wilson(0, n)[1] <= within * far


def pair_matrix(vectors: np.ndarray) -> np.ndarray:
    """All pairwise L2 distances of unit vectors (float32)."""
    v = vectors.astype(np.float32)
    return np.asarray(np.sqrt(np.maximum(2.0 - 2.0 * (v @ v.T), 0.0)))


def upper_pairs(matrix: np.ndarray, rows: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Scores of each unordered pair among ``rows`` (indices), dropping pairs with the same label."""
    sub = matrix[np.ix_(rows, rows)]
    keep = np.triu(np.ones(sub.shape, bool), 1)
    if labels is not None:
        keep &= labels[rows, None] != labels[None, rows]
    return np.asarray(sub[keep])


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


# -- populations ----------------------------------------------------------------------------------
def embedding_summary(embedded: Embedded) -> str:
    """How many images had no face, more than one, and which detector found the face used."""
    found = embedded.found
    counts: dict[str, int] = {}
    for d in embedded.detector:
        counts[d or "none"] = counts.get(d or "none", 0) + 1
    return (
        f"{len(embedded.paths)} images: {int((~found).sum())} with no face found (left out), "
        f"{int((embedded.faces > 1).sum())} with more than one face (the largest is used, as compare does); "
        "face found by " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    )


@dataclass
class Population:
    """A labelled folder's adults with a face found, split in halves by a hash of each file name."""

    name: str  # the folder's name
    kind: str  # its label format: utkface or fairface (populations.source_kind)
    people: list[Person]
    vectors: np.ndarray  # their unit embeddings
    half: np.ndarray = field(init=False)
    labels: np.ndarray = field(init=False)  # one per image (each a different person), unique across folders
    model_id: str = ""  # the identity model that made ``vectors``

    def __post_init__(self) -> None:
        self.half = half_split(p.path for p in self.people)
        self.labels = np.array([f"{self.name}:{p.path}" for p in self.people])

    def only_half(self, half: str) -> Population:
        """Its ``first`` (split flag False) or ``second`` half; the name says which."""
        rows = np.flatnonzero(self.half == (half == "second"))
        name = f"{self.name} ({half} half)"
        return Population(name, self.kind, [self.people[i] for i in rows], self.vectors[rows], self.model_id)


def load_population(
    root: Path,
    min_age: int,
    limit: int | None = None,
    cache: Path | None = None,
    workers: int | None = None,
    settings: EngineSettings | None = None,
) -> Population:
    """Read the folder's labels, embed its adults (at most ``limit``, spread evenly), print what was found."""
    people, malformed, kind = labelled_people(root)
    adults = [p for p in people if p.age >= min_age]
    chosen = spread(adults, limit)
    of = f", {len(chosen)} of them used (--limit, spread evenly)" if len(chosen) < len(adults) else ""
    age = " (FairFace: an age group counts by its youngest age)" if kind == "fairface" else ""
    print(
        f"{root}: {len(people)} images with {kind} labels ({malformed} did not parse); "
        f"{len(adults)} aged {min_age}+{age}{of}"
    )
    embedded = embed_images(root, [p.path for p in chosen], cache, workers or 1, settings)
    print(embedding_summary(embedded))
    found = embedded.found
    kept = [p for p, f in zip(chosen, found, strict=True) if f]
    print(f"{len(kept)} faces aged {min_age}+; every pair of two images counts as an impostor pair")
    return Population(root.name, kind, kept, embedded.vectors[found], embedded.model_id)


def lfw_source(
    root: Path, cache: Path | None, workers: int | None, settings: EngineSettings, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """lfw-dev's unit embeddings (faces found) and identity names, via the helpers ``eval lfw`` uses.

    ``limit``: about that many images, whole identities spread evenly (every k-th identity).
    """
    from faceplus.evaluation.calibrate import folder_identities, image_list
    from faceplus.evaluation.folder_embeddings import embed_folder

    images = image_list(root)
    if limit is not None and limit < len(images):
        identities = sorted(set(folder_identities(images)))[:: math.ceil(len(images) / max(limit, 1))]
        kept = set(identities)
        images = [p for p, n in zip(images, folder_identities(images), strict=True) if n in kept]
    embeddings = embed_folder(
        root,
        images,
        workers=workers,
        cache=cache,
        detector=settings.detection.detector,
        embedder=settings.embedder,
        landmarks=settings.landmarks,
    )
    vectors = embeddings.vectors()
    found = ~np.isnan(vectors).any(1)
    names = np.array(folder_identities(embeddings.paths))
    return vectors[found], names[found]


# -- the command -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FarOptions:
    """What ``faceplus eval far`` is asked (the command line parses into this: faceplus.cli.evaluation)."""

    root: Path
    #: the engine that embeds and whose calibration is measured (the primary detector already chosen)
    settings: EngineSettings = field(default_factory=EngineSettings)
    min_age: int = 0
    limit: int | None = None
    cache: Path | None = None
    workers: int | None = None
    #: only this half of ``root`` (``first``/``second``: the split ``faceplus calibrate --groups --half`` fits on)
    half: str = "all"
    also: Path | None = None
    also_cache: Path | None = None
    lfw: Path | None = None
    lfw_cache: Path | None = None
    heldout: bool = False
    k: int = 25
    per_group: int = 100
    save_cohort: Path | None = None
    strength: tuple[float, ...] = ()
    pairs: Path | None = None
    cohort: tuple[str, ...] = ("root",)
    report: Path | None = None


def evaluate_far(args: FarOptions) -> int:
    """``faceplus eval far``: per-group tables at the serving thresholds, then (with --lfw) per source, held out."""
    from faceplus.engine import Engine

    population = load_population(Path(args.root), args.min_age, args.limit, args.cache, args.workers, args.settings)
    if args.half != "all":
        population = population.only_half(args.half)
        print(f"counting on its {args.half} half only: {len(population.people)} faces")
    others = []
    if args.also:
        print()
        others.append(
            load_population(Path(args.also), args.min_age, args.limit, args.also_cache, args.workers, args.settings)
        )
    calibration = Engine(args.settings).calibration  # what compare serves (FACEPLUS_COMPARE_CALIBRATION)
    _print_serving_tables(calibration, [population, *others])
    lfw_pairs = None
    if args.lfw:
        lfw_vectors, names, lfw_pairs = _print_lfw_at_serving(args, Path(args.lfw), calibration)
        if args.heldout:
            _run_heldout(args, Path(args.lfw).name, Study(population, lfw_vectors, names, others))
    if args.report:
        from faceplus.evaluation.report import far_report

        thresholds = calibration.threshold_distances
        scores = calibration.scores(population.vectors, population.vectors)
        rows = group_far(scores, population.people, np.arange(len(population.people)), thresholds)
        print(f"report: {far_report(Path(args.report), Path(args.root), rows, lfw_pairs, calibration, args.lfw)}")
    return 0


def _print_serving_tables(calibration: Calibration, populations: list[Population]) -> None:
    """Each population's per-group false accepts at the serving thresholds."""
    thresholds = calibration.threshold_distances
    for pop in populations:
        rows = group_far(
            calibration.scores(pop.vectors, pop.vectors), pop.people, np.arange(len(pop.people)), thresholds
        )
        print()
        print(format_table(f"Serving thresholds ({calibration.calibrated_on}) on {pop.name}:", rows, tuple(thresholds)))


def _print_lfw_at_serving(
    args: FarOptions, lfw_folder: Path, calibration: Calibration
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The --lfw folder's false accepts and true accepts at the serving thresholds: its vectors, identities and
    (genuine, impostor) pair distances."""
    thresholds = calibration.threshold_distances
    lfw_vectors, names = lfw_source(lfw_folder, args.lfw_cache, args.workers, args.settings, args.limit)
    genuine, impostor = _pairs(calibration.scores(lfw_vectors, lfw_vectors), names)
    lfw = GroupFar("all cross-identity pairs", len(impostor), count_accepts(impostor, thresholds))
    print()
    note = " (the pairs the thresholds were fit on)" if lfw_folder.name == calibration.info.get("data", "?") else ""
    print(format_table(f"Serving thresholds on {lfw_folder.name}{note}:", [lfw], tuple(thresholds)))
    tar = " ".join(f'"{f}": {np.mean(genuine <= d) * 100:.2f}%' for f, d in thresholds.items())
    print(f"TAR on its {len(genuine):,} same-person pairs: {tar}")
    return lfw_vectors, names, (genuine, impostor)


def _run_heldout(args: FarOptions, lfw_name: str, study: Study) -> None:
    """--heldout: the five steps fit on one half and counted on the other, then the strength sweep, LFW 10-fold
    accuracy and the saved cohort calibration where asked."""
    from faceplus.evaluation.calibrate import NotEnoughPairs

    cohort_from = _cohort_sources(args)
    root = study.root.name
    others = study.others
    print()
    print(
        f"Held out: cohort and thresholds fit on one half ({root} by image, {lfw_name} by identity), "
        "false accepts counted on the other half"
        + (f" and on the same half of {', '.join(o.name for o in others)} (never fit on)" if others else "")
        + ", both ways round and pooled."
    )
    normalised = dict(k=args.k, cohort_from=cohort_from, per_group=args.per_group)
    for label, options in _heldout_steps(args, root, lfw_name):
        print()
        try:
            print(format_result(heldout(study, label, **options)))
        except NotEnoughPairs as exc:  # a subset (--limit) too small for this fit
            print(f"{label}: not run: {exc}")
    if args.strength:
        print()
        print('Step 4 with its shift scaled by "strength" (1 = step 4): held-out FAR/nominal at "1e-4"')
        print(strength_sweep(study, list(args.strength), **normalised, fit_on=("lfw",)))
    fitted = fit_half(study, False, k=args.k, cohort_from=cohort_from, per_group=args.per_group, fit_on=("lfw",))
    if args.pairs:
        print()
        print(lfw_ten_fold(args, fitted.norm))
    if args.save_cohort:
        save_cohort_calibration(study, fitted, args, Path(args.save_cohort))


def _cohort_sources(args: FarOptions) -> tuple[str, ...]:
    """--cohort without repeats, ``utkface`` read as its new name ``root``."""
    return tuple(dict.fromkeys("root" if c == "utkface" else c for c in args.cohort))


def _heldout_steps(args: FarOptions, root: str, lfw_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The held-out steps, each adding one thing: their labels and ``heldout`` options."""
    from faceplus.calibration import default_calibration

    cohort_from = _cohort_sources(args)
    sources = " + ".join({"root": root, "lfw": lfw_name}[c] for c in cohort_from)
    cohort = f"k={args.k}, cohort: <= {args.per_group} {root} adults per race x gender of the fit half"
    cohort = cohort if cohort_from == ("root",) else f"k={args.k}, cohort: fit half of {sources}"
    pooled = dict(matched=True, fit_on=("root", "lfw"))
    normalised = dict(k=args.k, cohort_from=cohort_from, per_group=args.per_group)
    return [
        ("1. shipped thresholds (raw distance)", dict(calibration=default_calibration(args.settings.embedder))),
        (f"2. raw distance, thresholds refit on the {lfw_name} fit half", dict(fit_on=("lfw",))),
        (f"3. raw distance, fit on {lfw_name} + {root} same race x gender impostors (equal weight)", pooled),
        (
            f"4. cohort-normalised ({cohort}), fit on the {lfw_name} fit half",
            {**normalised, "fit_on": ("lfw",)},
        ),
        ("5. cohort-normalised, fit as in 3", {**normalised, **pooled}),
    ]


# -- held-out study: thresholds (and cohort) fit on one half, false accepts counted on the other -----------
@dataclass
class Study:
    """The sources, each split in halves: the folder the cohort comes from and ``others`` by image, LFW by
    identity. ``others`` (e.g. utkface-more beside fairface-dev) are only counted on, never fit on."""

    root: Population
    lfw: np.ndarray  # lfw-dev unit embeddings
    names: np.ndarray  # lfw-dev identity per row
    others: list[Population] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lfw_half = half_split(self.names)
        self.lfw_labels = np.array([f"lfw:{n}" for n in self.names])


@dataclass(frozen=True)
class StudyResult:
    """Held-out figures of one scoring, pooled over both ways round: per-group rows of each population
    (the cohort's folder first), lfw-dev impostors, and lfw-dev TAR."""

    label: str
    tables: dict[str, list[GroupFar]]
    lfw: GroupFar
    genuine: int
    true_accepts: dict[str, int]

    @property
    def groups(self) -> list[GroupFar]:
        """The rows of the cohort's own folder (its held-out half)."""
        return next(iter(self.tables.values()))

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


def measurable_levels(impostor_sets: list[np.ndarray]) -> tuple[str, ...]:
    """The rates every impostor set has pairs enough to fit (one false accept at least): a subset
    (``--limit``) cannot fit "1e-5"."""
    levels = tuple(f for f in FAR_LEVELS if all(math.floor(float(f) * len(s)) >= 1 for s in impostor_sets))
    if not levels:
        from faceplus.evaluation.calibrate import NotEnoughPairs

        raise NotEnoughPairs(f"too few impostor pairs ({min(len(s) for s in impostor_sets):,}) to fit even 1e-3")
    return levels


def fit_cohort(
    study: Study, half: bool, k: int, cohort_from: tuple[str, ...] = ("root",), per_group: int = 100
) -> tuple[CohortNorm, np.ndarray]:
    """The cohort of the half whose split flag is ``half``, and its faces' labels (``folder:path``, ``lfw:name``).

    ``root``: at most ``per_group`` adults of each race x gender of the root folder's half (a cohort covering
    every group); ``lfw``: all lfw-dev faces of the half's identities. No face of the other half is in it.
    """
    root = study.root
    parts = []
    if "root" in cohort_from:
        rows = balanced(root.people, np.flatnonzero(root.half == half), per_group)
        parts.append((root.vectors[rows], root.labels[rows]))
    if "lfw" in cohort_from:
        parts.append((study.lfw[study.lfw_half == half], study.lfw_labels[study.lfw_half == half]))
    labels = np.concatenate([p[1] for p in parts])
    return CohortNorm.build(np.concatenate([p[0] for p in parts]), k, labels), labels


def fit_half(
    study: Study,
    half: bool,
    k: int = 0,
    cohort_from: tuple[str, ...] = ("root",),
    per_group: int = 100,
    matched: bool = False,
    fit_on: tuple[str, ...] = ("root", "lfw"),
    strength: float = 1.0,
) -> Fitted:
    """Fit on the images whose split flag is ``half`` (the root folder's adults and lfw-dev identities of that half).

    ``k`` = 0 scores raw distances; otherwise a :class:`CohortNorm` of the half's faces of ``cohort_from``
    (``root``: at most ``per_group`` adults of each race x gender; ``lfw``: all its fit-half faces) with ``k``
    neighbours. Both sources weigh the same in the thresholds; ``matched`` keeps only root impostor pairs of
    the same race and gender (the impostors an attacker would pick, and what each group's table row measures).
    Nothing of the other half, and nothing of ``study.others``, enters the fit.
    """
    root = study.root
    root_fit, lfw_fit = root.half == half, study.lfw_half == half
    norm, cohort_labels = fit_cohort(study, half, k, cohort_from, per_group) if k else (None, None)
    fitted = Fitted(Calibration(0, 1, {}), norm, cohort_labels, strength)
    lfw_rows = np.flatnonzero(lfw_fit)
    genuine, lfw_impostor = _pairs(
        fitted.scores(study.lfw[lfw_rows], study.lfw_labels[lfw_rows]), study.names[lfw_rows]
    )
    root_rows = np.flatnonzero(root_fit)
    upper = np.triu_indices(len(root_rows), 1)
    root_impostor = fitted.scores(root.vectors[root_rows], root.labels[root_rows])[upper]
    if matched:
        group = np.array([f"{root.people[i].race} {root.people[i].gender}" for i in root_rows])
        root_impostor = root_impostor[(group[:, None] == group[None, :])[upper]]
    sets = {"root": root_impostor, "lfw": lfw_impostor}
    names = {"root": root.name, "lfw": "lfw"}
    info = {f"{names[name]}_impostor_pairs": int(len(sets[name])) for name in fit_on}
    impostor = [sets[name] for name in fit_on]
    levels = measurable_levels(impostor)
    calibration = fit_calibration(genuine, impostor if len(impostor) > 1 else impostor[0], info, levels)
    return Fitted(calibration, norm, cohort_labels, strength)


def heldout(study: Study, label: str, calibration: Calibration | None = None, **options: Any) -> StudyResult:
    """Fit on one half (:func:`fit_half` ``options``), count on the other, both ways round, pooled.

    A given ``calibration`` (raw distances) is used as it is: the shipped one, for the baseline. Only the
    rates both halves could fit are reported.
    """
    fits = [
        fit_half(study, half, **options) if calibration is None else Fitted(calibration, None, None)
        for half in (False, True)
    ]
    levels = [f for f in FAR_LEVELS if all(f in fit.calibration.threshold_distances for fit in fits)]
    tables: dict[str, dict[str, GroupFar]] = {}
    lfw_total: GroupFar | None = None
    genuine_total, true_accepts = 0, dict.fromkeys(levels, 0)
    for half, fitted in zip((False, True), fits, strict=True):
        thresholds = {f: fitted.calibration.threshold_distances[f] for f in levels}
        for pop in (study.root, *study.others):
            test = np.flatnonzero(pop.half != half)
            d = fitted.scores(pop.vectors[test], pop.labels[test])
            totals = tables.setdefault(pop.name, {})
            for g in group_far(d, [pop.people[i] for i in test], np.arange(len(test)), thresholds):
                totals[g.group] = totals[g.group] + g if g.group in totals else g
        test = np.flatnonzero(study.lfw_half != half)
        genuine, impostor = _pairs(fitted.scores(study.lfw[test], study.lfw_labels[test]), study.names[test])
        lfw = GroupFar("lfw-dev", len(impostor), count_accepts(impostor, thresholds))
        lfw_total = lfw if lfw_total is None else lfw_total + lfw
        genuine_total += len(genuine)
        for far, accepted in count_accepts(genuine, thresholds).items():
            true_accepts[far] += accepted
    assert lfw_total is not None
    return StudyResult(label, {n: list(t.values()) for n, t in tables.items()}, lfw_total, genuine_total, true_accepts)


def strength_sweep(study: Study, strengths: list[float], **options: Any) -> str:
    """Held-out FAR/nominal at "1e-4" per race x gender, lfw-dev FAR and TAR, for each cohort-shift strength.

    What a stronger shift than :class:`CohortNorm`'s (strength 1) trades: groups move together, and TAR on
    lfw-dev falls. Every row is held out as in :func:`heldout`; no strength is chosen from this table.
    """
    results = [heldout(study, f"strength {s:g}", strength=s, **options) for s in strengths]
    if tuple(results[0].true_accepts) != FAR_LEVELS:
        return f"not run: these halves fit only {', '.join(results[0].true_accepts)} (a subset: --limit)"
    names = [g.group for g in results[0].groups if is_race_gender(g.group) and enough_pairs(g.pairs, 1e-4)]
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


def format_result(result: StudyResult) -> str:
    """Held-out per-group tables (the cohort's folder with lfw-dev's impostors as one more row, then any other
    folder), and TAR."""
    fars = tuple(result.true_accepts)
    (first, rows), *others = result.tables.items()
    parts = [format_table(f"{result.label} ({first}):", [*rows, result.lfw], fars)]
    parts += [format_table(f"{result.label} ({name}, never fit on):", table, fars) for name, table in others]
    tar = ", ".join(f'"{f}" {result.tar(f) * 100:.2f}%' for f in fars)
    return "\n\n".join(parts) + f"\nTAR on {result.genuine:,} held-out lfw-dev same-person pairs: {tar}"


def lfw_ten_fold(args: FarOptions, norm: CohortNorm | None) -> str:
    """LFW 10-fold accuracy on ``args.pairs``, raw and cohort-normalised (the cohort holds no LFW face)."""
    from faceplus.evaluation.folder_embeddings import embed_folder
    from faceplus.evaluation.lfw import read_pairs, ten_fold

    assert args.pairs is not None and args.lfw is not None
    pairs = read_pairs(args.pairs)
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    embeddings = embed_folder(
        Path(args.lfw),
        images,
        workers=args.workers,
        cache=args.lfw_cache,
        detector=args.settings.detection.detector,
        embedder=args.settings.embedder,
        landmarks=args.settings.landmarks,
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


def save_cohort_calibration(study: Study, fitted: Fitted, args: FarOptions, out: Path) -> Calibration:
    """Fit step 4 on the first halves only and write it (``out`` and ``<out stem>.cohort.npz`` beside it: a
    calibration's own cohort, so writing one never replaces another's).

    The second halves stay unseen, so the table printed here is the written file's own held-out check.
    """
    import sys
    import time

    assert fitted.norm is not None
    root = study.root
    cohort_file = out.with_name(f"{out.stem}.cohort.npz")
    fitted.norm.save(cohort_file)
    packaged = out.parent.resolve() == Path(__file__).resolve().parents[1] / "data"
    cal = fitted.calibration
    sources = f"{root.name} first half (adults)"
    info = {
        **cal.info,
        "calibrated_on": f"lfw-dev impostor pairs (first half of identities), cohort-normalised; cohort: {sources}",
        "command": "faceplus eval far " + " ".join(sys.argv[3:]),
        "cohort": f"{len(fitted.norm.vectors)} {root.name} faces (<= {args.per_group} per race x gender, first half); "
        + TERMS[root.kind],
        "model_id": _engine_of(args.settings)[0],  # the identity model whose distances these thresholds are in
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
    tables = {}
    for pop in (root, *study.others):
        test = np.flatnonzero(pop.half)
        d = fitted.scores(pop.vectors[test], pop.labels[test])
        tables[pop.name] = group_far(d, [pop.people[i] for i in test], np.arange(len(test)), thresholds)
    lfw_test = np.flatnonzero(study.lfw_half)
    genuine, impostor = _pairs(fitted.scores(study.lfw[lfw_test], study.lfw_labels[lfw_test]), study.names[lfw_test])
    lfw = GroupFar("lfw-dev", len(impostor), count_accepts(impostor, thresholds))
    result = StudyResult(
        f"Written {out.name}, on the second halves it never saw",
        tables,
        lfw,
        len(genuine),
        count_accepts(genuine, thresholds),
    )
    print()
    print(format_result(result))
    print(f"wrote {out} and {cohort_file} ({cohort_file.stat().st_size:,} bytes)")
    return written
