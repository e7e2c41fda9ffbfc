"""Embed the main face of many images in parallel, keeping the plain and the mirrored embedding apart.

Evaluations and calibration both need every image of a benchmark embedded once. Keeping the plain
and flipped embeddings separately lets one run report what flip TTA adds, and recording which
detector found each face lets it report what the detection fallback adds. Results can be cached
in an ``.npz`` file so ``calibrate`` reuses what ``eval lfw`` computed.
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

from faceplus.config import DetectionSettings, ImageLimits, Settings


@dataclass
class FolderEmbeddings:
    """Per image (relative path): plain and mirrored-chip embeddings, and the detector that found the face."""

    paths: list[str]
    plain: np.ndarray  # [N,128], NaN rows where no face was found
    flipped: np.ndarray
    detector: list[str]  # "" where no face was found

    def index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}

    def vectors(self, flip_tta: bool = True, fallback: bool = True, primary: str = "hog1") -> np.ndarray:
        """Embeddings as the engine would give them with or without flip TTA and detection fallback.

        Without fallback, faces that only a fallback detector (anything but ``primary``) found count as missed.
        """
        vectors = (self.plain + self.flipped) / 2 if flip_tta else self.plain.copy()
        if not fallback:
            vectors[[d != primary for d in self.detector]] = np.nan
        return vectors

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, paths=np.array(self.paths), plain=self.plain, flipped=self.flipped, detector=np.array(self.detector)
        )

    @classmethod
    def load(cls, path: Path) -> FolderEmbeddings:
        with np.load(path) as data:
            return cls(list(data["paths"]), data["plain"], data["flipped"], list(data["detector"]))


_worker_engine = None


def _init_worker() -> None:
    global _worker_engine
    from faceplus.engine import Engine

    # The benchmark images are evaluated whatever their size; a detector may find small faces too.
    settings = Settings(
        limits=ImageLimits(min_side=1, max_side=100_000, max_bytes=1 << 31),
        detection=DetectionSettings(min_face=20),
        flip_tta=False,
    )
    _worker_engine = Engine(settings)


def _embed_one(path: str) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    from faceplus.engine import NoFaceFound

    engine = _worker_engine
    assert engine is not None
    try:
        decoded = engine.load(path)
        face = engine.main_face(decoded, prefer="center")
    except NoFaceFound:
        return None, None, ""
    chip = engine.chips(decoded.rgb, [face])
    both = engine.embed_chips(np.concatenate([chip, chip[:, :, ::-1]]))
    return both[0], both[1], face.detector


def embed_folder(
    root: Path, relpaths: Iterable[str], workers: int | None = None, cache: Path | None = None, progress: bool = True
) -> FolderEmbeddings:
    """Embed the centre face of each image under ``root``; reuse ``cache`` for images already done."""
    relpaths = list(dict.fromkeys(relpaths))
    done = FolderEmbeddings.load(cache) if cache and cache.is_file() else None
    known = done.index() if done else {}
    todo = [p for p in relpaths if p not in known]
    results: dict[str, tuple[np.ndarray | None, np.ndarray | None, str]] = {}
    if todo:
        workers = workers or min(os.cpu_count() or 1, 4)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            jobs = pool.map(_embed_one, [str(root / p) for p in todo], chunksize=8)
            for rel, result in tqdm(
                zip(todo, jobs, strict=True), total=len(todo), disable=not progress, desc="embedding", unit="img"
            ):
                results[rel] = result
    nan = np.full(128, np.nan, np.float32)
    plain, flipped, detector = [], [], []
    for rel in relpaths:
        if rel in results:
            p, f, d = results[rel]
            plain.append(nan if p is None else p)
            flipped.append(nan if f is None else f)
            detector.append(d)
        else:
            i = known[rel]
            assert done is not None
            plain.append(done.plain[i])
            flipped.append(done.flipped[i])
            detector.append(done.detector[i])
    out = FolderEmbeddings(relpaths, np.array(plain, np.float32), np.array(flipped, np.float32), detector)
    if cache and todo:
        merged = out if done is None else _merge(done, out)
        merged.save(cache)
    return out


def _merge(a: FolderEmbeddings, b: FolderEmbeddings) -> FolderEmbeddings:
    index = a.index()
    extra = [i for i, p in enumerate(b.paths) if p not in index]
    return FolderEmbeddings(
        a.paths + [b.paths[i] for i in extra],
        np.concatenate([a.plain, b.plain[extra]]),
        np.concatenate([a.flipped, b.flipped[extra]]),
        a.detector + [b.detector[i] for i in extra],
    )
