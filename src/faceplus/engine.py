"""The pipeline: image -> faces (box, landmarks, aligned chip, embedding, attributes) -> compare.

Detection tries what a careful engine would before reporting that an image has no face: the primary
detector, then the others (:mod:`faceplus.detection`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import cached_property, partial
from multiprocessing import get_context
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from faceplus.attributes import FaceAnalyzer, parse_attributes
from faceplus.calibration import Calibration, compare_calibration, default_calibration
from faceplus.chips import IDENTITY, face_chips
from faceplus.detection import DetectorChain
from faceplus.errors import FaceplusError, ignore_interrupts
from faceplus.imaging import DecodedImage, ImageSource, load_image
from faceplus.models.dlib_models import DlibModels
from faceplus.models.identity import EmbeddingModel
from faceplus.models.resnet_onnx import OnnxFaceEmbedder, embedding_model
from faceplus.results import Box, BoxStyle, Detection, Face, Match
from faceplus.settings import EMBEDDERS, Settings

_pool_engine: Engine | None = None


def _init_pool_engine(settings: Settings) -> None:
    global _pool_engine
    ignore_interrupts()
    _pool_engine = Engine(settings)


def _detect_or_error(engine: Engine, image: ImageSource, options: dict[str, Any]) -> list[Face] | FaceplusError:
    try:
        return engine.detect(image, **options)
    except FaceplusError as exc:
        return exc


def _pool_detect(image: ImageSource, options: dict[str, Any]) -> list[Face] | FaceplusError:
    assert _pool_engine is not None
    return _detect_or_error(_pool_engine, image, options)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (NaN rows stay NaN)."""
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


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


#: detect_many's error when its worker processes die. The usual cause: each worker (multiprocessing's "spawn")
#: re-imports the calling script, and a script without a main guard then starts workers from inside a worker.
WORKERS_DIED = (
    "detect_many(workers>1): the worker processes died. In a script, put the calls under "
    '`if __name__ == "__main__":` (each worker re-imports the script; without that guard it runs the script '
    "again and fails), or pass workers=1. Otherwise a worker ran out of memory or crashed: see the lines above."
)


class Embedder(Protocol):
    """What the engine needs of an identity model: raw descriptors ``[N, 128]`` of aligned chips (chips.IDENTITY)."""

    #: The tag stored with every embedding this model makes (faceplus.models.identity).
    model: EmbeddingModel

    def embed(self, chips: np.ndarray) -> np.ndarray: ...


@dataclass
class EngineModels:
    """The models an engine runs, in the manner of insightface's ``FaceAnalysis``: one composer, one object per
    model family, each loaded on first use. Give an :class:`Engine` your own to swap one (a test double, another
    embedder with the same chip geometry); by default the bundled ones."""

    dlib: DlibModels = field(default_factory=DlibModels)  # HOG, MMOD, the 5/68-point predictors
    make_embedder: Callable[[], Embedder] = OnnxFaceEmbedder  # dlib's ResNet on onnxruntime
    make_analyzer: Callable[[], FaceAnalyzer] = FaceAnalyzer  # the attribute models (faceplus.attributes)

    @classmethod
    def for_settings(cls, settings: Settings) -> EngineModels:
        """The bundled models, with the identity model ``settings.embedder`` names (``FACEPLUS_EMBEDDER``)."""
        if settings.embedder not in EMBEDDERS:
            raise ValueError(f"unknown embedder {settings.embedder!r}; choose one of {EMBEDDERS}")
        return cls(make_embedder=partial(OnnxFaceEmbedder, embedder=settings.embedder))


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
        settings: Settings | None = None,
        calibration: Calibration | None = None,
        models: EngineModels | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._calibration = calibration
        self.models = models or EngineModels.for_settings(self.settings)
        self.dlib = self.models.dlib
        self.detectors = DetectorChain(self.settings.detection, self.dlib)

    @cached_property
    def embedder(self) -> Embedder:
        """By default dlib's ResNet converted to ONNX (same outputs within 1e-6, ~15x faster than dlib-bin)."""
        return self.models.make_embedder()

    @cached_property
    def embedding_model(self) -> EmbeddingModel:
        """The identity model this engine embeds with, known without loading it (the store's model tag)."""
        return embedding_model(self.settings.embedder)

    @property
    def model_id(self) -> str:
        """``embedding_model.id``: what the store keeps beside every embedding this engine makes."""
        return self.embedding_model.id

    @cached_property
    def calibration(self) -> Calibration:
        return self._calibration or default_calibration()

    @property
    def thresholds(self) -> dict[str, float]:
        return self.calibration.thresholds

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
        faces = [self._face(decoded.rgb, h) for h in hits]
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

    def detect_many(
        self, images: Iterable[ImageSource], *, workers: int = 1, progress: bool = False, **options: Any
    ) -> Iterator[tuple[ImageSource, list[Face] | FaceplusError]]:
        """Detect in many images, in order, each as ``(image, faces or the error it raised)``.

        With ``workers > 1`` a pool of processes (one engine and one onnxruntime thread each) shares the
        work: on 2 cores that is faster than more threads in one process. A bad image yields its
        :class:`~faceplus.errors.FaceplusError` and the batch goes on.
        """
        images = list(images)
        if workers <= 1:
            results: Iterable[list[Face] | FaceplusError] = (_detect_or_error(self, img, options) for img in images)
        else:
            pool = ProcessPoolExecutor(
                workers, mp_context=get_context("spawn"), initializer=_init_pool_engine, initargs=(self.settings,)
            )
            results = pool.map(partial(_pool_detect, options=options), images, chunksize=4)
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
        face = self._face(decoded.rgb, Detection(*box.corners, 0.0, "given", BoxStyle.GIVEN))
        if embed:
            self.embed_faces(decoded.rgb, [face])
        return face

    def _face(self, rgb: np.ndarray, hit: Detection) -> Face:
        """Landmarks for a detection; a foreign box (:class:`BoxStyle`) is first re-centred the way HOG draws it.

        A given box (Face++ ``face_rectangle``) is used as it is: clients pass back boxes detect returned.
        """
        box = hit.box()
        landmarks68 = self.dlib.landmarks(rgb, box.corners, 68)
        fit_box = box.corners
        if hit.style is BoxStyle.FOREIGN:
            fit_box = hog_style_box(landmarks68)
            landmarks68 = self.dlib.landmarks(rgb, fit_box, 68)
        return Face(
            box=box,
            score=hit.score,
            detector=hit.detector,
            landmarks5=self.dlib.landmarks(rgb, fit_box, 5),
            landmarks68=landmarks68,
            box_style=hit.style,
        )

    # -- embedding ----------------------------------------------------------------------------
    def chips(self, rgb: np.ndarray, faces: Sequence[Face], alignment: int | None = None) -> np.ndarray:
        """Aligned 150x150 chips for ``faces``, from their 68-point (default) or 5-point landmarks.

        On lfw-dev, chips aligned on all 68 points matched better than dlib's 5-point chips (see
        ``faceplus eval lfw``): the fit over 68 points is less sensitive to one misplaced point.
        """
        alignment = alignment or self.settings.alignment
        return face_chips(rgb, [f.landmarks68 if alignment == 68 else f.landmarks5 for f in faces], IDENTITY)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length embeddings of aligned chips (with flip TTA: both passes in one batch)."""
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        if self.settings.flip_tta:
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

    @cached_property
    def match_calibration(self) -> Calibration:
        """The calibration ``match``/``compare`` score with: ``FACEPLUS_COMPARE_CALIBRATION`` (default ``lfw``)."""
        return self._calibration or compare_calibration(self.settings.compare_calibration)

    def match(self, embedding1: np.ndarray, embedding2: np.ndarray) -> Match:
        """Compare two embeddings: Face++ confidence, the L2 distance, and the FAR thresholds."""
        distance = float(np.linalg.norm(np.asarray(embedding1) - np.asarray(embedding2)))
        cal = self.match_calibration
        score = distance if cal.normalization is None else cal.score(embedding1, embedding2)
        return Match(float(cal.confidence(score)), distance, cal.thresholds, cal.calibrated_on)

    @property
    def rescores_search(self) -> bool:
        """True when search hits must be re-scored with their embeddings (a cohort-normalised calibration)."""
        return self.match_calibration.normalization is not None

    def score_hits(
        self,
        query: np.ndarray,
        hits: Sequence[tuple[str, float]],
        embeddings: Mapping[str, np.ndarray] | None = None,
    ) -> list[tuple[str, float]]:
        """(token, confidence) of search hits by the calibration compare uses, best first.

        ``hits`` are (token, L2 distance) from a FaceSet's index. With a cohort-normalised calibration each hit
        is re-scored from its embedding (``embeddings``, by token) and the hits re-ranked by that score, so
        search and compare give one pair of faces the same confidence against the same thresholds.
        """
        cal = self.match_calibration
        if cal.normalization is None:
            scored = list(hits)
        else:
            assert embeddings is not None, "a cohort-normalised calibration needs the hits' embeddings"
            scored = sorted(
                ((t, cal.score(query, embeddings[t])) for t, _ in hits if t in embeddings), key=lambda h: h[1]
            )
        confidences = np.atleast_1d(cal.confidence(np.array([score for _, score in scored], np.float64)))
        return [(t, float(c)) for (t, _), c in zip(scored, confidences, strict=True)]

    def compare(self, image1: ImageSource | DecodedImage, image2: ImageSource | DecodedImage) -> Match:
        """Compare the largest face of each image."""
        face1, face2 = self.main_face(image1), self.main_face(image2)
        assert face1.embedding is not None and face2.embedding is not None
        return self.match(face1.embedding, face2.embedding)
