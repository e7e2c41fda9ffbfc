"""The pipeline: image -> faces (box, landmarks, aligned chip, embedding, attributes) -> compare.

Detection tries what a careful engine would before reporting that an image has no face: the primary
detector, then the others (:mod:`faceplus.detection`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property, partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from faceplus.attributes import FaceAnalyzer, parse_attributes
from faceplus.calibration import Calibration, CalibrationSource, calibration_source, compare_calibration
from faceplus.detection import DetectorChain
from faceplus.embedders import Embedder, IdentityFamily, identity_family
from faceplus.errors import FaceplusError, ignore_interrupts
from faceplus.face_request import FaceRequest, ImageFaces, analyze_image
from faceplus.imaging import DecodedImage, ImageSource, load_image
from faceplus.landmarks import Landmarker
from faceplus.models import runtime
from faceplus.models.dlib_models import DlibModels
from faceplus.models.identity import EmbeddingModel
from faceplus.results import Box, BoxStyle, Detection, Face, Match
from faceplus.settings import SHIPPED_CALIBRATION, EngineSettings
from faceplus.settings import data_dir as default_data_dir

_pool_engine: Engine | None = None


def _init_pool_engine(settings: EngineSettings) -> None:
    global _pool_engine
    ignore_interrupts()
    _pool_engine = Engine(settings)


def _detect_or_error(
    engine: Engine, image: ImageSource, options: dict[str, Any], landmarks: bool = True
) -> list[Face] | FaceplusError:
    try:
        faces = engine.detect(image, **options)
    except FaceplusError as exc:
        return exc
    if not landmarks:
        for face in faces:
            face.drop_landmark_fit()
    return faces


def _pool_detect(image: ImageSource, options: dict[str, Any], landmarks: bool) -> list[Face] | FaceplusError:
    assert _pool_engine is not None
    return _detect_or_error(_pool_engine, image, options, landmarks)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (NaN rows stay NaN)."""
    return np.asarray((vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32))


def embeddings_from_descriptors(
    plain: np.ndarray, mirrored: np.ndarray | None = None, *, unit: bool = True
) -> np.ndarray:
    """The engine's embeddings from the ResNet's raw descriptors of chips (and of their mirror images).

    Flip TTA is the mean of a chip's and its mirror's descriptors. dlib's descriptors vary in length;
    normalising them made same/different decisions more accurate on lfw-dev (the length carries image
    quality, not identity). Evaluation calls this too, with each step on or off, to report what it adds.
    """
    raw = plain if mirrored is None else (plain + mirrored) / 2
    return normalize(raw) if unit else np.asarray(raw, np.float32)


#: Where dlib's HOG detector puts its box relative to the 68 landmarks its predictor then finds, in units
#: of their RMS radius: centre offset (x, y) and side. Mean over lfw-dev images outside pairs-dev.txt.
_HOG_BOX_FROM_LANDMARKS = (-0.080, -0.174, 2.896)


def hog_style_box(landmarks68: np.ndarray) -> tuple[float, float, float, float]:
    """The box dlib's HOG detector would draw around these landmarks (the box its predictors were trained on).

    dlib's shape predictors are sensitive to where the box sits; re-running them from this box makes
    landmarks found from another detector's box (BlazeFace where HOG did not confirm it, MMOD) closer
    to those HOG's own box would give.
    """
    centre = landmarks68.mean(0)
    radius = float(np.sqrt(((landmarks68 - centre) ** 2).sum(1).mean()))
    dx, dy, side = _HOG_BOX_FROM_LANDMARKS
    cx, cy, half = centre[0] + dx * radius, centre[1] + dy * radius, side * radius / 2
    return (cx - half, cy - half, cx + half, cy + half)


def _kept_pixels(image: ImageSource | DecodedImage, decoded: DecodedImage) -> np.ndarray:
    """The pixels a face's landmark fit may read later: a copy where they are the caller's own array.

    A caller may reuse its array (a video frame buffer) before reading landmarks fitted on first read; decoded
    bytes, files and PIL images give the engine pixels nobody else holds.
    """
    if isinstance(image, np.ndarray) and np.may_share_memory(image, decoded.rgb):
        return decoded.rgb.copy()
    return decoded.rgb


#: detect_many's error when its worker processes die. The usual cause: each worker (multiprocessing's "spawn")
#: re-imports the calling script, and a script without a main guard then starts workers from inside a worker.
WORKERS_DIED = (
    "detect_many(workers>1): the worker processes died. In a script, put the calls under "
    '`if __name__ == "__main__":` (each worker re-imports the script; without that guard it runs the script '
    "again and fails), or pass workers=1. Otherwise a worker ran out of memory or crashed: see the lines above."
)


@dataclass
class EngineModels:
    """The models an engine runs, in the manner of insightface's ``FaceAnalysis``: one composer, one object per
    model family, each loaded on first use. Give an :class:`Engine` your own to swap one (a test double, another
    embedder of the family ``FACEPLUS_EMBEDDER`` names: the chips it is given are that family's); by default the
    bundled ones. ``make_embedder`` None: the family's own model (:mod:`faceplus.embedders`)."""

    dlib: DlibModels = field(default_factory=DlibModels)  # HOG, MMOD, the 5/68-point predictors
    make_embedder: Callable[[], Embedder] | None = None  # the identity model (SFace by default)
    make_analyzer: Callable[[], FaceAnalyzer] = FaceAnalyzer  # the attribute models (faceplus.attributes)

    @classmethod
    def for_settings(cls, settings: EngineSettings) -> EngineModels:
        """The bundled models, with the identity model ``settings.embedder`` names (``FACEPLUS_EMBEDDER``)."""
        return cls(make_embedder=identity_family(settings).load)


class NoFaceFound(LookupError):
    """An image in which no detector found a face (raised only by calls that need one face)."""


class Engine:
    """Find faces, align them, embed them and compare them.

    >>> engine = Engine()
    >>> faces = engine.detect("photo.jpg")          # every face, largest first
    >>> match = engine.compare("a.jpg", "b.jpg")     # largest face of each
    >>> match.confidence, match.thresholds["1e-4"]
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        calibration: Calibration | None = None,
        models: EngineModels | None = None,
        data_dir: Path | None = None,
    ) -> None:
        if settings is None:  # the library's entrance: FACEPLUS_* and FACEPLUS_DATA_DIR, as the command line reads them
            settings, data_dir = EngineSettings.from_env(), data_dir or default_data_dir()
        self.settings = settings
        #: The data folder whose own thresholds (``faceplus calibrate``'s) ``compare_calibration=auto`` prefers; None:
        #: the shipped ones (a server resolves ``auto`` for its folder before its engines start).
        self.data_dir = data_dir
        runtime.configure(self.settings.runtime)  # onnxruntime threads, converted-model cache: per process
        self._calibration = calibration
        #: The identity model's family (``FACEPLUS_EMBEDDER``): its chip geometry, flip TTA, tag and loader.
        self.identity: IdentityFamily = identity_family(self.settings)
        self.models = models or EngineModels.for_settings(self.settings)
        self.dlib = self.models.dlib
        self.detectors = DetectorChain(self.settings.detection, self.dlib)
        self.landmarker = Landmarker(self.settings.landmarks, self.dlib, lambda: self.analyzer.mesh_model)

    @cached_property
    def embedder(self) -> Embedder:
        """By default SFace converted to an fp32 ONNX graph (``FACEPLUS_EMBEDDER``; faceplus.embedders)."""
        return (self.models.make_embedder or self.identity.load)()

    @cached_property
    def embedding_model(self) -> EmbeddingModel:
        """The identity model this engine embeds with, known without loading it (the store's model tag)."""
        return self.identity.embedding_model()

    @property
    def model_id(self) -> str:
        """``embedding_model.id``: what the store keeps beside every embedding this engine makes."""
        return self.embedding_model.id

    @cached_property
    def calibration(self) -> Calibration:
        """The one calibration this engine scores and reports with (compare, search, :attr:`thresholds`):
        the one given, else ``FACEPLUS_COMPARE_CALIBRATION`` (default ``auto``: the data folder's
        ``calibration-<embedder>.json`` written by ``faceplus calibrate``, else the shipped file of this engine's
        identity model, ``calibration.SHIPPED_CALIBRATIONS``; :attr:`calibration_source` says which).

        A calibration fit for another identity model is refused (:class:`~faceplus.calibration.CalibrationMismatch`,
        a ValueError, which ``faceplus serve`` reports at startup): another model's distances mean nothing against
        its thresholds.
        """
        setting = self.settings.compare_calibration
        if self._calibration is not None:
            return self._calibration.check(self.model_id, "the calibration given")
        source = self.calibration_source
        assert source is not None
        shipped = "cohort" if setting == "cohort" else SHIPPED_CALIBRATION
        chosen = shipped if source.origin == "shipped" else str(source.path)
        calibration = compare_calibration(chosen, self.settings.embedder)
        return calibration.check(self.model_id, f"FACEPLUS_COMPARE_CALIBRATION={setting} ({source.path})")

    @cached_property
    def calibration_source(self) -> CalibrationSource | None:
        """The file :attr:`calibration` is read from and why (``faceplus serve`` prints it); None for one given."""
        if self._calibration is not None:
            return None
        return calibration_source(self.settings.compare_calibration, self.settings.embedder, self.data_dir)

    @property
    def thresholds(self) -> dict[str, float]:
        """The confidences at FAR 1e-3/1e-4/1e-5 that compare and search report."""
        return self.calibration.thresholds

    def confidences(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """compare's confidence for every pair of rows of two embedding arrays: [n, 128] x [m, 128] -> [n, m].

        The one scoring path: :meth:`match` (compare) and :meth:`score_hits` (search) report these numbers, by
        :attr:`calibration` (raw L2, or cohort-normalised). A single embedding [128] counts as one row.
        """
        return self.calibration.confidences(np.atleast_2d(a), np.atleast_2d(b))

    # -- intake -------------------------------------------------------------------------------
    def load(self, image: ImageSource | DecodedImage, param: str | None = None) -> DecodedImage:
        if isinstance(image, DecodedImage):
            return image
        return load_image(image, self.settings.limits, param=param)

    # -- detection ----------------------------------------------------------------------------
    def find_boxes(self, rgb: np.ndarray, min_face: int | None = None) -> list[Detection]:
        """Face boxes, trying other detectors only when the primary one finds nothing."""
        return self.detectors.find(rgb, min_face)

    @cached_property
    def analyzer(self) -> FaceAnalyzer:
        return self.models.make_analyzer()

    def detect(
        self,
        image: ImageSource | DecodedImage,
        *,
        embed: bool = True,
        attributes: str | Sequence[str] | None = None,
        landmark: int = 0,
        min_face: int | None = None,
        max_faces: int | None = None,
    ) -> list[Face]:
        """Every face in ``image``, largest first, with landmarks and (by default) embeddings.

        ``attributes``: Face++ names (``"age,gender"`` or a list); ``landmark``: 0, 1 (83 named points)
        or 2 (106). Unsupported names raise :class:`~faceplus.errors.UnsupportedAttribute` before any work.
        """
        names = parse_attributes(attributes)
        decoded = self.load(image)
        hits = sorted(self.find_boxes(decoded.rgb, min_face), key=lambda h: h.area, reverse=True)
        if max_faces is not None:
            hits = hits[:max_faces]
        pixels = _kept_pixels(image, decoded) if hits else decoded.rgb
        faces = [self._face(pixels, h) for h in hits]
        if embed:
            self.embed_faces(decoded.rgb, faces)
        self.analyze(decoded, faces, names, landmark)
        return faces

    def analyze(
        self, image: ImageSource | DecodedImage, faces: Sequence[Face], attributes: Sequence[str], landmark: int = 0
    ) -> None:
        """Fill Face++ attributes and named landmarks of already detected ``faces``."""
        if attributes or landmark:
            self.analyzer.analyze_many(
                self.load(image).rgb, list(faces), parse_attributes(attributes), landmark=landmark
            )

    def analyze_image(self, image: ImageSource | DecodedImage, request: FaceRequest) -> ImageFaces:
        """One pass over ``image`` for everything ``request`` asks (:func:`faceplus.face_request.analyze_image`):
        the faces, their embeddings, landmarks and attributes of the largest few, and their analysis crops."""
        return analyze_image(self, image, request)

    def detect_many(
        self,
        images: Iterable[ImageSource],
        *,
        workers: int = 1,
        progress: bool = False,
        landmarks: bool = True,
        **options: Any,
    ) -> Generator[tuple[ImageSource, list[Face] | FaceplusError], None, None]:
        """Detect in many images, in order, each as ``(image, faces or the error it raised)``.

        With ``workers > 1`` a pool of processes (one engine and one onnxruntime thread each) shares the
        work: on 2 cores that is faster than more threads in one process. A bad image yields its
        :class:`~faceplus.errors.FaceplusError` and the batch goes on. A face leaves a worker with its landmarks
        fitted (they cannot be fitted later, away from the image); ``landmarks=False``: callers that read none
        (indexing, clustering) get faces without them and skip that work.
        """
        images = list(images)
        if workers <= 1:
            results: Iterable[list[Face] | FaceplusError] = (
                _detect_or_error(self, img, options, landmarks) for img in images
            )
        else:
            pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_init_pool_engine, initargs=(self.settings,)
            )
            results = pool.map(partial(_pool_detect, options=options, landmarks=landmarks), images, chunksize=4)
        try:
            yield from zip(images, tqdm(results, total=len(images), disable=not progress, unit="img"), strict=True)
        except BrokenProcessPool as e:
            raise RuntimeError(WORKERS_DIED) from e
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)

    def face_at(self, image: ImageSource | DecodedImage, box: Box, *, embed: bool = True) -> Face:
        """The face inside a given rectangle, skipping detection (Face++ ``face_rectangle``)."""
        decoded = self.load(image)
        keypoints = self.detectors.keypoints_at(decoded.rgb, box)
        face = self._face(
            _kept_pixels(image, decoded), Detection(*box.corners, 0.0, "given", BoxStyle.GIVEN, keypoints)
        )
        if embed:
            self.embed_faces(decoded.rgb, [face])
        return face

    def _face(self, rgb: np.ndarray, hit: Detection) -> Face:
        """A face for a detection, its landmarks left to be fitted when first read (:meth:`fit_landmarks`).

        SFace aligns on the detector's key points, so detect + embed reads no landmarks; attributes, named
        landmarks, crops, drawing and dlib's ResNet read them and get exactly what an eager fit gives.
        """
        return Face(
            box=hit.box(),
            score=hit.score,
            detector=hit.detector,
            box_style=hit.style,
            keypoints=hit.keypoints,
            landmark_fit=partial(self.fit_landmarks, rgb, hit),
        )

    def fit_landmarks(self, rgb: np.ndarray, hit: Detection) -> tuple[np.ndarray, np.ndarray]:
        """dlib's 5 points and the 68 points of a detection; a foreign box (:class:`BoxStyle`) is first re-centred
        the way HOG draws it.

        A given box (Face++ ``face_rectangle``) is used as it is: clients pass back boxes detect returned.
        """
        box = hit.box()
        found = self.landmarker.landmarks68(rgb, box)
        if hit.style is not BoxStyle.FOREIGN:
            five = found.landmarks5 if found.landmarks5 is not None else self.dlib.landmarks(rgb, box.corners, 5)
            return five, found.points
        fit_box = hog_style_box(found.points)
        landmarks68 = found.points
        if found.source == "dlib68":  # the mesh frames its own crop: only dlib's predictor wants HOG's box
            landmarks68 = self.dlib.landmarks(rgb, fit_box, 68)
        return self.dlib.landmarks(rgb, fit_box, 5), landmarks68

    # -- embedding ----------------------------------------------------------------------------
    def chips(self, rgb: np.ndarray, faces: Sequence[Face], alignment: int | None = None) -> np.ndarray:
        """The identity model's aligned chips for ``faces`` (SFace: 112 px on the ArcFace template from each face's
        key points; dlib's ResNet: 150 px on its 68 (default) or 5 points, ``alignment``)."""
        return self.identity.chips(rgb, faces, alignment)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length embeddings of aligned chips (with the family's flip TTA: both passes in one batch)."""
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        if self.identity.flip_tta:
            both = self.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
            return embeddings_from_descriptors(both[: len(chips)], both[len(chips) :])
        return embeddings_from_descriptors(self.embedder.embed(chips))

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> None:
        """Fill ``face.embedding`` for each face, in one batch."""
        for face, vector in zip(faces, self.embed_chips(self.chips(rgb, faces)), strict=True):
            face.embedding = vector

    # -- comparison ---------------------------------------------------------------------------
    def main_face(self, image: ImageSource | DecodedImage, *, prefer: str = "largest", embed: bool = True) -> Face:
        """The largest face (or, with ``prefer="center"``, the one nearest the image centre)."""
        decoded = self.load(image)
        faces = self.detect(decoded, embed=False)
        if not faces:
            raise NoFaceFound("no face found in the image")
        if prefer == "center":
            cy, cx = decoded.height / 2, decoded.width / 2
            face = min(faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)
        else:
            face = faces[0]
        if embed:
            self.embed_faces(decoded.rgb, [face])
        return face

    def match(self, embedding1: np.ndarray, embedding2: np.ndarray) -> Match:
        """Compare two embeddings: Face++ confidence (:meth:`confidences`), the L2 distance, and the thresholds."""
        distance = float(np.linalg.norm(np.asarray(embedding1) - np.asarray(embedding2)))
        confidence = float(self.confidences(embedding1, embedding2)[0, 0])
        cal = self.calibration
        return Match(confidence, distance, cal.thresholds, cal.calibrated_on)

    @property
    def rescores_search(self) -> bool:
        """True when the index's L2 order is not the score order (a cohort-normalised calibration): search then
        re-ranks more candidates than it returns."""
        return self.calibration.normalization is not None

    def score_hits(
        self, query: np.ndarray, hits: Sequence[tuple[str, float]], embeddings: Mapping[str, np.ndarray]
    ) -> list[tuple[str, float]]:
        """(token, confidence) of search hits, best first: :meth:`confidences` of the query and each hit.

        ``hits`` are (token, L2 distance) from a FaceSet's index; each is scored from its embedding
        (``embeddings``, by token; a hit without one, removed meanwhile, is dropped), so search and compare
        give one pair of faces the same confidence against the same thresholds, whatever the calibration.
        """
        tokens = [t for t, _ in hits if t in embeddings]
        if not tokens:
            return []
        confidences = self.confidences(query, np.stack([embeddings[t] for t in tokens]))[0]
        order = np.argsort(-confidences, kind="stable")
        return [(tokens[i], float(confidences[i])) for i in order]

    def compare(self, image1: ImageSource | DecodedImage, image2: ImageSource | DecodedImage) -> Match:
        """Compare the largest face of each image."""
        face1, face2 = self.main_face(image1), self.main_face(image2)
        assert face1.embedding is not None and face2.embedding is not None
        return self.match(face1.embedding, face2.embedding)
