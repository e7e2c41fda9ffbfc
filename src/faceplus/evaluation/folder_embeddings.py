"""Embed the main face of many images in parallel, keeping every alignment/flip variant apart.

Evaluations and calibration both need every image of a benchmark embedded once. Keeping the raw
embeddings of the 5- and 68-point aligned chips and of their mirrors separately lets one run report
what each step of the pipeline adds; recording which detector found each face lets it report what
the detection fallback adds. Results can be cached in an ``.npz`` file so ``calibrate`` reuses what
``eval lfw`` computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceplus.private_files import save_private_npz
from faceplus.settings import DetectionSettings, EngineSettings, ImageLimits

#: Raw embeddings kept per image for dlib's ResNet: chip aligned on 5 or 68 points, plain or mirrored.
VARIANTS = ("a5", "a5_flip", "a68", "a68_flip")


def variants(embedder: str) -> tuple[str, ...]:
    """The raw embeddings kept per image for ``embedder``: each of its family's chips, plain and mirrored."""
    from faceplus.embedders import identity_family

    names = identity_family(EngineSettings(embedder=embedder)).chip_variants
    return tuple(v for name in names for v in (name, f"{name}_flip"))


@dataclass
class FolderEmbeddings:
    """Per image (relative path): raw embeddings of each variant, and the detector that found the face."""

    paths: list[str]
    raw: dict[str, np.ndarray]  # variant (:func:`variants`) -> [N,128]; NaN rows where no face was found
    detector: list[str]  # "" where no face was found
    model_id: str = ""  # the identity model that made ``raw`` (Engine.model_id)

    def index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}

    def vectors(
        self,
        alignment: int = 68,
        flip_tta: bool | None = None,
        normalize: bool = True,
        fallback: bool = True,
        primary: str = "hog1",
    ) -> np.ndarray:
        """Embeddings as the engine would give them with each pipeline step on or off.

        Without fallback, faces that only a fallback detector (anything but ``primary``) found count as missed.
        ``alignment`` is dlib's chip's (ResNet); an SFace run has one chip (``arcface``) and ignores it.
        ``flip_tta`` None: as the engine runs the model by default (ResNet: chip and mirror; SFace: one pass).
        """
        from faceplus.engine import embeddings_from_descriptors

        chip = f"a{alignment}" if f"a{alignment}" in self.raw else "arcface"
        if flip_tta is None:
            flip_tta = chip != "arcface"
        mirrored = self.raw[f"{chip}_flip"] if flip_tta else None
        vectors = embeddings_from_descriptors(self.raw[chip], mirrored, unit=normalize)
        if not fallback:  # on a copy: without TTA or unit length, ``vectors`` is the cached raw array itself
            vectors = vectors.copy()
            vectors[[d != primary for d in self.detector]] = np.nan
        return vectors

    def select(self, keep: list[int]) -> FolderEmbeddings:
        return FolderEmbeddings(
            [self.paths[i] for i in keep],
            {k: v[keep] for k, v in self.raw.items()},
            [self.detector[i] for i in keep],
            self.model_id,
        )

    def save(self, path: Path) -> None:
        save_private_npz(
            path,
            paths=np.array(self.paths),
            detector=np.array(self.detector),
            model_id=np.array(self.model_id),
            **self.raw,
        )

    @classmethod
    def load(cls, path: Path, model_id: str | None = None) -> FolderEmbeddings:
        """A cache file; with ``model_id``, one made by another identity model is refused (never mixed)."""
        with np.load(path) as data:
            kept = [k for k in data.files if k not in ("paths", "detector", "model_id")]
            if "model_id" not in data.files or not (
                set(VARIANTS) <= set(kept) or {"arcface", "arcface_flip"} <= set(kept)
            ):
                raise ValueError(f"{path} was written by an older faceplus (no model id); delete it")
            made_by = str(data["model_id"])
            check_model(path, made_by, model_id)
            return cls(list(data["paths"]), {k: data[k] for k in kept}, list(data["detector"]), made_by)


def check_model(path: Path, made_by: str, expected: str | None) -> None:
    """Refuse a cache of embeddings another identity model made: their distances mean nothing together."""
    if expected is not None and made_by != expected:
        raise ValueError(f"{path} holds embeddings of {made_by}, not {expected}: delete it or give another cache")


def model_id_of(embedder: str) -> str:
    """``Engine.model_id`` of ``embedder`` (``FACEPLUS_EMBEDDER`` value), known without loading the model."""
    from dataclasses import replace

    from faceplus.engine import Engine

    return Engine(replace(EngineSettings(), embedder=embedder)).model_id


def cache_path(cache: Path, model_id: str, detector: str | None = None, landmarks: str | None = None) -> Path:
    """The file a cache named ``cache`` really is: one per identity model (and primary detector, if given).

    The name carries the model id (``/`` made ``-``), so changing ``FACEPLUS_EMBEDDER`` or the default model
    starts a new file instead of reading another model's vectors; the file records the id too (:meth:`load`).
    A landmark source other than the default (``FACEPLUS_LANDMARKS``: the chips are aligned on its points) is
    named too, so dlib68- and mesh-aligned vectors never mix.
    """
    source = [landmarks] if landmarks and landmarks != EngineSettings().landmarks else []
    parts = [cache.stem, *([detector] if detector else []), model_id.replace("/", "-"), *source]
    return cache.with_name("-".join(parts) + cache.suffix)


_worker_engine = None


def _init_worker(detector: str, embedder: str, landmarks: str) -> None:
    global _worker_engine
    from faceplus.engine import Engine

    # Benchmark images are evaluated whatever their size.
    settings = EngineSettings(
        limits=ImageLimits(min_side=1, max_side=100_000, max_bytes=1 << 31),
        detection=DetectionSettings(detector=detector, min_face=20),
        embedder=embedder,
        landmarks=landmarks,
    )
    _worker_engine = Engine(settings)


def _embed_one(path: str) -> tuple[np.ndarray | None, str]:
    """Raw embeddings [V,128] in :func:`variants` order, and the detector; None where no face was found."""
    from faceplus.engine import NoFaceFound

    engine = _worker_engine
    assert engine is not None
    try:
        decoded = engine.load(path)
        face = engine.main_face(decoded, prefer="center", embed=False)
    except NoFaceFound:
        return None, ""
    chips = np.concatenate([engine.chips(decoded.rgb, [face], a) for a in engine.identity.chip_variants.values()])
    both = np.stack([chips, chips[:, :, ::-1]], axis=1)  # each chip, then its mirror
    raw = engine.embedder.embed(both.reshape(-1, *chips.shape[1:]))
    return raw, face.detector


def embed_folder(
    root: Path,
    relpaths: Iterable[str],
    workers: int | None = None,
    cache: Path | None = None,
    progress: bool = True,
    detector: str = "blazeface",
    embedder: str | None = None,
    landmarks: str | None = None,
) -> FolderEmbeddings:
    """Embed the centre face of each image under ``root``; reuse ``cache`` for images already done.

    ``detector`` is the primary detector; ``embedder`` the identity model and ``landmarks`` the landmark source
    (defaults: the engine's; the commands pass ``FACEPLUS_EMBEDDER`` and ``FACEPLUS_LANDMARKS``, as serving uses
    them, so a calibration fits the embeddings it will score). A cache file belongs to one detector and one
    identity model (:func:`cache_path`: both are in its name, and the model id is checked on reading), and one
    landmark source (named unless the default).
    """
    embedder = embedder or EngineSettings().embedder
    landmarks = landmarks or EngineSettings().landmarks
    model_id = model_id_of(embedder)
    if cache:
        cache = cache_path(cache, model_id, detector, landmarks)
    names = variants(embedder)
    relpaths = list(dict.fromkeys(relpaths))
    done = (
        FolderEmbeddings.load(cache, model_id) if cache and cache.is_file() else FolderEmbeddings([], {}, [], model_id)
    )
    known = done.index()
    todo = [p for p in relpaths if p not in known]
    if todo:
        workers = workers or min(os.cpu_count() or 1, 4)
        found: list[np.ndarray] = []
        detectors: list[str] = []
        with ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(detector, embedder, landmarks)
        ) as pool:
            jobs = pool.map(_embed_one, [str(root / p) for p in todo], chunksize=8)
            for raw, found_by in tqdm(jobs, total=len(todo), disable=not progress, desc="embedding", unit="img"):
                found.append(np.full((len(names), 128), np.nan, np.float32) if raw is None else raw)
                detectors.append(found_by)
        stacked = np.stack(found)
        new = FolderEmbeddings(todo, {k: stacked[:, i] for i, k in enumerate(names)}, detectors, model_id)
        done = (
            new
            if not done.paths
            else FolderEmbeddings(
                done.paths + new.paths,
                {k: np.concatenate([done.raw[k], new.raw[k]]) for k in names},
                done.detector + new.detector,
                model_id,
            )
        )
        if cache:
            done.save(cache)
        known = done.index()
    return done.select([known[p] for p in relpaths])
