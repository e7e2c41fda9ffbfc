"""Identity accuracy on lfw-dev with chips aligned on each landmark source (FACEPLUS_LANDMARKS), in one pass.

Each image of pairs-dev.txt is detected once (the engine's chain, the face nearest the centre as
``faceplus eval lfw`` picks it); that detection's landmarks are then made by an engine with
``landmarks=dlib68`` and by one with ``landmarks=mesh`` (each engine's own ``_face``), and the chips aligned on
the 68 points (the engine default) and on the 5 points taken from the 68 (``five_from_68``, what a 5-point
aligned model derives from ``landmarks68``) are embedded with dlib's ResNet (flip TTA, unit length). Reported
per source: 10-fold accuracy, TAR at FAR 1e-3 (pairs-dev), mean genuine/impostor distance.

    uv run python benchmarks/landmarks68_lfw.py [--limit-folds N] [--cache /tmp/lm68_lfw.npz]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceplus.calibration import default_calibration
from faceplus.chips import IDENTITY, face_chips, five_from_68
from faceplus.engine import Engine, embeddings_from_descriptors
from faceplus.evaluation.lfw import evaluate, read_pairs
from faceplus.settings import DetectionSettings, EngineSettings, ImageLimits

LFW = Path("../shared/data/lfw-dev")
SOURCES = ("dlib68", "mesh")
VARIANTS = ("68-pt chip", "5-from-68 chip")


def engines() -> dict[str, Engine]:
    base = EngineSettings(
        limits=ImageLimits(min_side=1, max_side=100_000, max_bytes=1 << 31),
        detection=DetectionSettings(min_face=20),
    )
    first = Engine(replace(base, landmarks=SOURCES[0]))
    rest = {s: Engine(replace(base, landmarks=s), models=first.models) for s in SOURCES[1:]}
    return {SOURCES[0]: first, **rest}


def embed(by_source: dict[str, Engine], path: Path) -> np.ndarray:
    """[sources, variants, 128] unit embeddings of the centre face; NaN where no face is found."""
    out = np.full((len(SOURCES), len(VARIANTS), 128), np.nan, np.float32)
    engine = by_source[SOURCES[0]]
    rgb = engine.load(str(path)).rgb
    hits = engine.find_boxes(rgb)
    if not hits:
        return out
    cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
    hit = min(hits, key=lambda h: (h.box().center[0] - cx) ** 2 + (h.box().center[1] - cy) ** 2)
    for i, source in enumerate(SOURCES):
        face = by_source[source]._face(rgb, hit)
        chips = face_chips(rgb, [face.landmarks68, five_from_68(face.landmarks68)], IDENTITY)
        raw = engine.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
        out[i] = embeddings_from_descriptors(raw[: len(chips)], raw[len(chips) :])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="reuse/store the embeddings in this .npz")
    args = parser.parse_args()
    pairs = read_pairs(LFW / "pairs-dev.txt")
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    if args.cache and args.cache.is_file():
        vectors = np.load(args.cache)["vectors"]
    else:
        by_source = engines()
        start = time.perf_counter()
        vectors = np.stack([embed(by_source, LFW / rel) for rel in images])
        print(f"embedded {len(images)} images in {time.perf_counter() - start:.0f} s")
        if args.cache:
            np.savez(args.cache, vectors=vectors)
    index = {rel: i for i, rel in enumerate(images)}
    same = np.array([p.same for p in pairs])
    a, b = [index[p.image1] for p in pairs], [index[p.image2] for p in pairs]
    calibration = default_calibration()
    print("| landmarks | chip | 10-fold accuracy | TAR@FAR1e-3 | genuine distance | impostor distance | no face |")
    print("|---|---|---|---|---|---|---|")
    for i, source in enumerate(SOURCES):
        for j, variant in enumerate(VARIANTS):
            v = vectors[:, i, j]
            result = evaluate(pairs, {rel: v[index[rel]] for rel in images}, calibration)
            d = np.linalg.norm(v[a] - v[b], axis=1)
            print(
                f"| {source} | {variant} | {result.mean * 100:.2f}% +- {result.std * 100:.2f} | "
                f"{result.tar_at_far_1e3 * 100:.2f}% | {np.nanmean(d[same]):.4f} | {np.nanmean(d[~same]):.4f} | "
                f"{result.images_without_face} |"
            )


if __name__ == "__main__":
    main()
