"""Distance -> Face++ confidence (0-100), and the confidences at which the false-accept rate is 1e-3/1e-4/1e-5.

The mapping is a logistic curve in the embedding distance. Fit on labelled identities (:func:`fit_calibration`):
confidence 50 at the equal-error distance measured on real pairs, 80 at the median same-person distance, and
the thresholds are the distances at which the measured impostor false-accept rate equals each nominal value,
on all cross-identity pairs of the calibration identities, pushed through the same curve. Fit on impostors
alone (``faceplus calibrate --groups``, :mod:`faceplus.evaluation.impostor_fit`; the shipped SFace file, from
FairFace): thresholds where each race x gender group's modelled rate averages the nominal one, and the curve
anchored so they read Face++'s own confidences. ``faceplus calibrate`` writes the file this module loads; the
shipped ones record the command that made them.

Thresholds belong to one identity model: each file records the model it was fit for (``info.embedder_model``,
an :class:`~faceplus.models.identity.EmbeddingModel` id) and the engine refuses to score another model's
embeddings against it (:meth:`Calibration.fits`). Each embedder ships its own file (:data:`SHIPPED_CALIBRATIONS`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from faceplus.private_files import save_private_npz
from faceplus.settings import AUTO_CALIBRATION, DEFAULT_EMBEDDER, SHIPPED_CALIBRATION, operator_calibration_file

FAR_LEVELS = ("1e-3", "1e-4", "1e-5")
CALIBRATION_FILE = "calibration.json"
#: The calibration shipped for each identity model (``FACEPLUS_EMBEDDER``), in ``faceplus.data``. The int8 ResNet
#: shares its fp32 network's thresholds (the same weights; lfw-dev -0.1 pt at them, docs/ENGINE.md); SFace's int8
#: moves its vectors more (median 0.15 from fp32) and has its own, fit as the fp32 file was (FairFace impostors).
SHIPPED_CALIBRATIONS = {
    "sface": "calibration-sface.json",
    "sface-int8": "calibration-sface-int8.json",
    "resnet": CALIBRATION_FILE,
    "resnet-int8": CALIBRATION_FILE,
}
#: What a calibration file without ``info.embedder_model`` was fit for: every file written before models were
#: recorded was fit on dlib's ResNet, and says so in ``info.embedder`` ("dlib-resnet-v1 (onnx), ...").
LEGACY_EMBEDDER = "dlib-resnet-v1"


class CalibrationMismatch(ValueError):
    """Thresholds fit for one identity model asked to score another model's embeddings: refused."""


@dataclass(frozen=True)
class Calibration:
    midpoint: float
    scale: float
    threshold_distances: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
    #: None: scores are raw L2 distances. Otherwise {"method": "cohort-shift", "cohort": file, "k", "reference"}:
    #: scores are :class:`CohortNorm` distances, and the thresholds are in those units.
    normalization: dict[str, Any] | None = None

    @property
    def embedder_model(self) -> str | None:
        """The id of the identity model the thresholds were fit for (``name/variant/sha16``); ``dlib-resnet-v1``
        for a file written before ids were recorded; None when nothing says (a calibration built in code)."""
        recorded = self.info.get("model_id")
        if recorded:
            return str(recorded)
        return LEGACY_EMBEDDER if str(self.info.get("embedder", "")).startswith(LEGACY_EMBEDDER) else None

    def fits(self, model_id: str) -> bool:
        """True when these thresholds may score embeddings of ``model_id`` (an ``EmbeddingModel.id``).

        The same network and weights (name and hash) must match; the variant may differ (``resnet-int8`` runs
        its fp32 network's weights and shares its thresholds). Unrecorded (None): accepted, as given.
        """
        recorded = self.embedder_model
        if recorded is None:
            return True
        mine, theirs = model_id.split("/"), recorded.split("/")
        if len(theirs) == 1:
            return mine[0] == theirs[0]
        return mine[0] == theirs[0] and mine[-1] == theirs[-1]

    def check(self, model_id: str, source: str = "the calibration") -> Calibration:
        """``self``, or :class:`CalibrationMismatch` saying which model it was fit for and which it would score."""
        if not self.fits(model_id):
            raise CalibrationMismatch(
                f"{source} was fit for identity model {self.embedder_model}, but the engine embeds with "
                f"{model_id}: its thresholds would mean nothing; use that model's calibration (faceplus calibrate "
                "writes one per model) or set FACEPLUS_EMBEDDER to the model it was fit for"
            )
        return self

    @property
    def calibrated_on(self) -> str:
        """What the thresholds were measured on, in a few words (the reply's ``calibration`` field)."""
        return str(self.info.get("calibrated_on") or self.info.get("data", "unknown"))

    @property
    def model_id(self) -> str | None:
        """The identity model whose distances the thresholds are in (``info["model_id"]``, written by
        ``faceplus calibrate`` and ``eval far --save-cohort``); None for a file that does not say."""
        return self.info.get("model_id") or None

    def cohort(self) -> CohortNorm | None:
        """The cohort scores are normalised against (loaded once per file), or None for raw distances."""
        if not self.normalization:
            return None
        n = self.normalization
        return _load_cohort(str(n["cohort"]), int(n["k"]), float(n["reference"]))

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The distance the thresholds apply to, for every row of ``a`` [n, d] against every row of ``b`` [m, d].

        L2 (:func:`l2_distances`), or cohort-normalised (:meth:`CohortNorm.distances`): [n, m], float64, the same
        whichever side is first. compare and search score through here, so they cannot drift apart.
        """
        norm = self.cohort()
        return l2_distances(a, b) if norm is None else norm.distances(a, b)

    def score(self, embedding1: np.ndarray, embedding2: np.ndarray) -> float:
        """:meth:`scores` of one pair."""
        return float(self.scores(np.ravel(embedding1)[None], np.ravel(embedding2)[None])[0, 0])

    def confidences(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Confidence 0-100 of every pair of rows of ``a`` [n, d] and ``b`` [m, d]: [n, m]."""
        return np.asarray(self.confidence(self.scores(a, b)), np.float64)

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
        """Written beside and renamed into place: a server starting meanwhile reads the old file or the new one."""
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """A calibration file; a cohort it names by a relative path is the one beside it (they travel together)."""
        path = Path(path)
        calibration = cls(**json.loads(path.read_text()))
        n = calibration.normalization
        if n and not Path(str(n["cohort"])).is_absolute():
            # Without this, a relative name would be looked up in faceplus.data: the shipped UTKFace cohort.
            normalization = {**n, "cohort": str((path.parent / str(n["cohort"])).resolve())}
            calibration = replace(calibration, normalization=normalization)
        return calibration


def shipped_calibration_file(embedder: str = DEFAULT_EMBEDDER) -> str:
    """The name in ``faceplus.data`` of ``embedder``'s shipped calibration."""
    from faceplus.settings import EMBEDDERS

    if embedder not in SHIPPED_CALIBRATIONS:
        raise ValueError(f"unknown embedder {embedder!r}; choose one of {EMBEDDERS}")
    return SHIPPED_CALIBRATIONS[embedder]


def default_calibration(embedder: str = DEFAULT_EMBEDDER) -> Calibration:
    """The calibration shipped for ``embedder`` (default: the settings' default model), made by ``faceplus calibrate``
    (SFace: ``--groups`` on fairface-dev's impostors, CC BY 4.0; dlib's ResNet: ``--root`` lfw-dev; each file's
    ``info`` records its command): :data:`SHIPPED_CALIBRATIONS`."""
    return _shipped(shipped_calibration_file(embedder))


#: The ``FACEPLUS_EMBEDDER`` whose shipped file holds the raw thresholds of each network (``EmbeddingModel.name``).
EMBEDDER_OF_MODEL = {"sface-2021dec": "sface", LEGACY_EMBEDDER: "resnet"}


def shipped_calibration_for(calibration: Calibration) -> Calibration:
    """The shipped raw calibration of the model ``calibration`` was fit for (default: the default model's):
    raw L2 thresholds for the same embeddings, where ``calibration`` is on another scale (cohort-normalised)."""
    name = (calibration.embedder_model or "").split("/")[0]
    return default_calibration(EMBEDDER_OF_MODEL.get(name, DEFAULT_EMBEDDER))


@cache
def _shipped(name: str) -> Calibration:
    text = resources.files("faceplus.data").joinpath(name).read_text()
    return Calibration(**json.loads(text))


COHORT_CALIBRATION_FILE = "calibration-cohort.json"
#: ``FACEPLUS_COMPARE_CALIBRATION`` values meaning the shipped file: ``shipped``, and the names it had before the
#: SFace file was fit on FairFace (``lfw``) or before it had a name (``default``, empty), kept for old settings.
SHIPPED_NAMES = (SHIPPED_CALIBRATION, "lfw", "default", "")


@dataclass(frozen=True)
class CalibrationSource:
    """Which calibration file compare scores with, and why: what ``faceplus serve`` prints at start and /readyz
    answers, so an operator can see whether their own thresholds are the ones in use."""

    #: ``data folder`` (``faceplus calibrate``'s), ``FACEPLUS_COMPARE_CALIBRATION`` (a file named there) or
    #: ``shipped`` (in the package).
    origin: str
    path: Path

    @property
    def shown(self) -> str:
        """The file, without the server's folders for a client (``/readyz`` needs no key): the shipped file by
        its place in the package, an operator's by its name."""
        return f"faceplus/data/{self.path.name}" if self.origin == "shipped" else self.path.name


def calibration_source(
    setting: str = AUTO_CALIBRATION, embedder: str = DEFAULT_EMBEDDER, data_dir: Path | None = None
) -> CalibrationSource:
    """The file ``FACEPLUS_COMPARE_CALIBRATION=setting`` means, in this order:

    1. a path: that file (a path equal to the data folder's own file counts as ``data folder``);
    2. ``cohort``: the shipped cohort-normalised file; ``shipped`` (or its older names ``lfw``, ``default``):
       ``embedder``'s shipped file;
    3. ``auto`` (default): ``data_dir``'s ``calibration-<embedder>.json`` (what ``faceplus calibrate`` writes) when
       it exists, else ``embedder``'s shipped file. Without a ``data_dir`` there is no own file to prefer.
    """
    own = operator_calibration_file(data_dir, embedder) if data_dir is not None else None
    if setting == AUTO_CALIBRATION:
        if own is not None and own.is_file():
            return CalibrationSource("data folder", own)
        setting = SHIPPED_CALIBRATION
    if setting in SHIPPED_NAMES or setting == "cohort":
        name = COHORT_CALIBRATION_FILE if setting == "cohort" else shipped_calibration_file(embedder)
        return CalibrationSource("shipped", Path(str(resources.files("faceplus.data").joinpath(name))))
    path = Path(setting)
    same = own is not None and path.resolve() == own.resolve()
    return CalibrationSource("data folder" if same else "FACEPLUS_COMPARE_CALIBRATION", path)


def compare_calibration(
    setting: str = AUTO_CALIBRATION, embedder: str = DEFAULT_EMBEDDER, data_dir: Path | None = None
) -> Calibration:
    """The calibration compare uses (``FACEPLUS_COMPARE_CALIBRATION``): ``auto`` (default), ``shipped``,
    ``cohort`` or a file; :func:`calibration_source` says which file each means.

    ``auto``: ``data_dir``'s own (``faceplus calibrate``), else as ``shipped``. ``shipped``: ``embedder``'s shipped
    file (:func:`default_calibration`). ``cohort``: cohort-normalised scores with
    thresholds fit on LFW and UTKFace together, for dlib's ResNet only (see docs/ENGINE.md, "Demographic
    differentials"); its cohort is derived from UTKFace, which is for non-commercial research only. A file: what
    ``faceplus calibrate --out FILE`` wrote for an operator's own population. The engine checks that what it
    gets was fit for its model (:meth:`Calibration.check`).
    """
    if setting == AUTO_CALIBRATION:
        source = calibration_source(setting, embedder, data_dir)
        setting = str(source.path) if source.origin == "data folder" else SHIPPED_CALIBRATION
    if setting in SHIPPED_NAMES:
        return default_calibration(embedder)
    if setting == "cohort":
        text = resources.files("faceplus.data").joinpath(COHORT_CALIBRATION_FILE).read_text()
        return Calibration(**json.loads(text))
    calibration = Calibration.load(Path(setting))
    if calibration.normalization:
        cohort = Path(str(calibration.normalization["cohort"]))
        if not cohort.is_file():  # say so now, not as a failed compare later
            raise FileNotFoundError(
                f"{setting} is cohort-normalised and needs its cohort file {cohort}, which is missing "
                "(faceplus calibrate --cohort writes the two side by side)"
            )
    return calibration


@cache
def _load_cohort(name: str, k: int, reference: float) -> CohortNorm:
    """A cohort file: a path, or the name of one shipped in ``faceplus.data``."""
    path = Path(name)
    source = path if path.is_absolute() else resources.files("faceplus.data").joinpath(name)
    with source.open("rb") as f, np.load(f) as data:
        vectors = data["vectors"].astype(np.float32)
    return CohortNorm(vectors, k, reference)


def far_distance(impostor_sorted: np.ndarray, far: float) -> float:
    """The largest distance threshold at which at most ``far`` of impostor distances are accepted (<=)."""
    k = int(math.floor(far * len(impostor_sorted)))
    if k < 1:
        raise ValueError(f"{len(impostor_sorted)} impostor pairs cannot measure a false-accept rate of {far}")
    return float((impostor_sorted[k - 1] + impostor_sorted[k]) / 2)


def pooled_far_distance(impostor_sets: list[np.ndarray], far: float) -> float:
    """The distance at which the mean of each set's false-accept rate is ``far`` (sources weigh the same).

    Pooling pairs instead would let the source with most pairs set the threshold alone.
    """
    sets = [np.sort(np.asarray(s, dtype=np.float64)) for s in impostor_sets]
    for s in sets:
        far_distance(s, far)  # each set must be able to measure the rate on its own

    def rate(t: float) -> float:
        return float(np.mean([np.searchsorted(s, t, side="right") / len(s) for s in sets]))

    candidates = np.sort(np.concatenate([s[: int(math.ceil(far * len(s) * len(sets))) + 1] for s in sets]))
    below = [t for t in candidates if rate(t) <= far]
    k = len(below)
    return float((candidates[k - 1] + candidates[k]) / 2) if 0 < k < len(candidates) else float(candidates[0])


def equal_error_distance(genuine: np.ndarray, impostor_sorted: np.ndarray) -> float:
    """The distance where the false-reject rate of ``genuine`` equals the false-accept rate of impostors."""
    genuine_sorted = np.sort(genuine)
    grid = np.linspace(genuine_sorted[0], impostor_sorted[-1], 2001)
    frr = 1.0 - np.searchsorted(genuine_sorted, grid, side="right") / len(genuine_sorted)
    far = np.searchsorted(impostor_sorted, grid, side="right") / len(impostor_sorted)
    return float(grid[int(np.argmin(np.abs(frr - far)))])


def fit_calibration(
    genuine: np.ndarray,
    impostor: np.ndarray | list[np.ndarray],
    info: dict[str, Any] | None = None,
    levels: tuple[str, ...] = FAR_LEVELS,
) -> Calibration:
    """Fit the curve and the FAR thresholds on same-person (``genuine``) and impostor distances.

    ``impostor`` may be a list of sets (e.g. one per image source): each then weighs the same in the FAR.
    ``levels``: the false-accept rates to fit (fewer when an operator's data cannot measure the rarest).
    """
    sets = impostor if isinstance(impostor, list) else [impostor]
    impostor_sorted = np.sort(np.concatenate(sets).astype(np.float64))
    genuine = np.asarray(genuine, dtype=np.float64)
    midpoint = equal_error_distance(genuine, impostor_sorted)
    scale = max((midpoint - float(np.median(genuine))) / math.log(4.0), 1e-3)
    if len(sets) == 1:
        distances = {far: far_distance(impostor_sorted, float(far)) for far in levels}
    else:
        distances = {far: pooled_far_distance(sets, float(far)) for far in levels}
    stats = {"genuine_pairs": int(len(genuine)), "impostor_pairs": int(len(impostor_sorted))}
    return Calibration(midpoint, scale, distances, {**stats, **(info or {})})


def measured_far(calibration: Calibration, impostor: np.ndarray) -> dict[str, float]:
    """The false-accept rate each threshold gives on (held-out) impostor distances."""
    impostor = np.asarray(impostor)
    return {far: float(np.mean(impostor <= d)) for far, d in calibration.threshold_distances.items()}


# -- cohort score normalisation ------------------------------------------------------------------
#: Below this distance a cohort face is the face itself (the same photo, float32 rounding ~1e-3): never its own
#: neighbour. Two different photos, even of one person, are further apart (lfw-dev: no two of its 4,033 photos
#: closer than 0.07).
SAME_FACE_DISTANCE = 0.01


#: Differences held at once by :func:`l2_distances` (float64: 8 MB).
_BLOCK_VALUES = 1 << 20


def l2_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distance of every row of ``a`` [n, d] to every row of ``b`` [m, d]: [n, m] float64.

    From the differences themselves, a row at a time (in blocks), so a pair's distance is the same number
    whatever else is scored with it: a matrix product's rounding depends on the matrix shapes (float32, unit
    embeddings: ~1e-7 between a 1-row and a 21-row product, benchmarks/scoring.py; now and then that moves a
    confidence's rounded third decimal), and compare scores one pair where search scores many. Exactly
    symmetric; about 0.4 us a pair on an idle core.
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings of different lengths: {a.shape[1]} and {b.shape[1]}")
    out = np.empty((len(a), len(b)), np.float64)
    rows = max(1, _BLOCK_VALUES // max(1, b.size))
    for start in range(0, len(a), rows):
        diff = a[start : start + rows, None, :] - b[None, :, :]
        out[start : start + rows] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))


@dataclass(frozen=True)
class CohortNorm:
    """Shift a distance by how crowded each face's neighbourhood is among other people (adaptive cohort norm).

    dlib's embedding packs some populations closer together than others (on UTKFace, East Asian women's
    faces lie nearer each other than white men's do), so one distance threshold accepts far more impostors
    there. ``density`` is a face's mean distance to its ``k`` nearest faces in a cohort of other people;
    the normalised distance is ``d - (density1 + density2) / 2 + reference``: symmetric, on the raw
    distance scale (``reference`` is the cohort's own median density), and larger where a face's
    neighbourhood is crowded. (Dividing by the densities instead, or AS-norm's z-scores, equalised
    groups less on held-out UTKFace; see docs/ENGINE.md.)
    """

    vectors: np.ndarray  # [m, 128] unit embeddings of the cohort
    k: int
    reference: float

    @classmethod
    def build(cls, vectors: np.ndarray, k: int, labels: np.ndarray | None = None) -> CohortNorm:
        """A cohort from embeddings; ``labels`` (identity per row) keep a person out of their own neighbourhood."""
        cohort = cls(_unit(vectors), k, 1.0)
        reference = float(np.median(cohort.density(cohort.vectors, labels, labels)))
        return cls(cohort.vectors, k, reference)

    def density(
        self, embeddings: np.ndarray, labels: np.ndarray | None = None, cohort_labels: np.ndarray | None = None
    ) -> np.ndarray:
        """Mean distance of each embedding to its ``k`` nearest cohort faces, skipping same-label faces.

        A face never counts itself: a cohort face closer than :data:`SAME_FACE_DISTANCE` (the same photo; an
        operator's cohort holds faces that are also enrolled and compared) is skipped, as in the fit.
        """
        e = _unit(embeddings).astype(np.float64)
        cohort = self.vectors.astype(np.float64)
        cohort_sq = (cohort * cohort).sum(1)
        out = np.empty(len(e), np.float64)
        for i, v in enumerate(e):
            # One face at a time (a matrix-vector product of the same shape each time), in float64: a face's
            # density is the same number alone (compare) or in a batch (search), which a matrix product is not.
            d = np.sqrt(np.maximum(cohort_sq + v @ v - 2.0 * (cohort @ v), 0.0))
            d[d < SAME_FACE_DISTANCE] = np.inf
            if labels is not None and cohort_labels is not None:
                d[cohort_labels == labels[i]] = np.inf
            out[i] = np.partition(d, self.k - 1)[: self.k].mean()
        return out

    def save(self, path: Path) -> None:
        """Write the cohort as ``cohort.npz`` files are (``vectors``: float32), owner-only (mode 0600).

        The vectors are embeddings of real people: biometric data. The file is created 0600 under a temporary
        name and renamed over ``path``, so it is never readable by others, not even while being written.
        """
        save_private_npz(path, vectors=self.vectors.astype(np.float32))

    def normalize(
        self, distance: np.ndarray | float, density1: np.ndarray, density2: np.ndarray, strength: float = 1.0
    ) -> np.ndarray:
        """Normalised distance from raw distances and both sides' densities (broadcasts).

        ``strength`` scales the shift; serving uses 1, ``eval far --strength`` sweeps others.
        """
        shift = (np.asarray(density1) + np.asarray(density2)) / 2 - self.reference
        return np.asarray(np.asarray(distance) - strength * shift)

    def distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Normalised distance of every row of ``a`` [n, d] to every row of ``b`` [m, d] (unit length first): [n, m]."""
        ea, eb = _unit(a), _unit(b)
        return self.normalize(l2_distances(ea, eb), self.density(ea)[:, None], self.density(eb)[None, :])

    def distance(self, embedding1: np.ndarray, embedding2: np.ndarray) -> float:
        """Normalised distance of one pair; the same whichever side comes first."""
        return float(self.distances(np.ravel(embedding1)[None], np.ravel(embedding2)[None])[0, 0])
