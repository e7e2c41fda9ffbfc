"""How small may a face be before the default detector (and the identity model) stop being precise?

    uv run python benchmarks/min_face.py [--folds 2] [--sizes 12,16,20,24,28,32,40,48,64]

The API's smallest reported face (``FACEPLUS_DETECT_MIN_FACE``) is set from these figures (docs/ENGINE.md,
"Smallest face"). The engine runs with its default settings except ``min_face`` lowered to 8 px, so every box the
detector chain draws is seen; a face "of N px" is one whose box (dlib's convention, as the API reports it) is at
least N px on its short side, the rule the API applies.

1. group-photos: the 43 boxed faces of 9 PASCAL VOC photos (IoU >= 0.4 with a labelled box counts as found, a
   box matching none is a false positive). For each minimum N: faces found and false positives among the boxes of
   at least N px; then every labelled face's size, and the boxes of the misses and false positives.
2. lfw-dev pairs (``pairs-dev.txt``, the first ``--folds`` folds: 200 same-person and 200 different-person pairs
   each): the second photo of each pair shrunk so that its face is N px and pasted in the middle of a grey
   128 px canvas (a small face in a larger photo); the first stays whole. Per N: whether the face is found where
   it was put, its box's median side, and the pair's compare confidence against the engine's own "1e-4" and
   "1e-3" thresholds: TAR over same-person pairs (a face not found is a rejection) and false accepts over
   different-person pairs; "other boxes": boxes drawn anywhere else on the canvases (false positives, or a
   neighbour's face shrunk with the photo). The row "whole" is the same pairs unshrunk (the baseline, in the
   same run).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from faceplus.engine import Engine
from faceplus.evaluation.lfw import Pair, read_pairs
from faceplus.imaging import load_image
from faceplus.results import Box, Face
from faceplus.settings import EngineSettings

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FOUND_IOU = 0.4
CANVAS = 128
SEE_ALL = 8  # the engine's min_face for this benchmark: below every size measured


def engine_seeing_all() -> Engine:
    settings = EngineSettings.from_env()
    return Engine(replace(settings, detection=replace(settings.detection, min_face=SEE_ALL)))


def side(box: Box) -> int:
    return min(box.width, box.height)


# -- group photos -------------------------------------------------------------------------------------
def group_photos() -> list[tuple[str, list[Box]]]:
    boxes: dict[str, list[Box]] = defaultdict(list)
    with (DATA / "group-photos" / "boxes.csv").open() as f:
        for row in csv.DictReader(f):
            boxes[row["file"]].append(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])))
    return list(boxes.items())


def group_hits(engine: Engine) -> tuple[list[tuple[str, Box, int | None]], list[tuple[str, Box]]]:
    """Every detector box as (photo, box, index of the labelled face it matches or None), and the labelled faces."""
    hits: list[tuple[str, Box, int | None]] = []
    truths: list[tuple[str, Box]] = []
    for name, truth in group_photos():
        base = len(truths)
        truths += [(name, t) for t in truth]
        rgb = load_image(DATA / "group-photos" / name).rgb
        for hit in engine.find_boxes(rgb):
            box = hit.box()
            best = max(range(len(truth)), key=lambda i: box.iou(truth[i]))
            hits.append((name, box, base + best if box.iou(truth[best]) >= FOUND_IOU else None))
    return hits, truths


def report_groups(engine: Engine, sizes: list[int]) -> None:
    hits, truths = group_hits(engine)
    print(f"\n## group-photos: {len(truths)} labelled faces in 9 photos (found: IoU >= {FOUND_IOU})\n")
    print("| smallest box kept (px) | faces found | false positives | smallest face found (px) |")
    print("|---|---|---|---|")
    for n in sizes:
        kept = [(name, box, match) for name, box, match in hits if side(box) >= n]
        found = {match for _, _, match in kept if match is not None}
        fps = sum(match is None for _, _, match in kept)
        smallest = min((side(box) for _, box, match in kept if match is not None), default=0)
        print(f"| {n} | {len(found)}/{len(truths)} | {fps} | {smallest} |")
    labelled = sorted(side(t) for _, t in truths)
    print(f"\nlabelled face sides (px): min {labelled[0]}, median {labelled[len(labelled) // 2]}, max {labelled[-1]}")
    matched = {match for _, _, match in hits if match is not None}
    for i, (name, truth) in enumerate(truths):
        if i not in matched:
            print(f"missed at every size: {name} labelled {truth}")
    for name, box, match in hits:
        if match is None:
            print(f"false positive: {name} {box} ({side(box)} px)")


# -- lfw-dev pairs, one side shrunk ---------------------------------------------------------------------
def centre_face(engine: Engine, rgb: np.ndarray) -> Face | None:
    faces = engine.detect(rgb, embed=False)
    if not faces:
        return None
    cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
    return min(faces, key=lambda f: (f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2)


def embedding(engine: Engine, rgb: np.ndarray, face: Face) -> np.ndarray:
    engine.embed_faces(rgb, [face])
    assert face.embedding is not None
    return face.embedding


def shrunk(rgb: np.ndarray, box: Box, n: int) -> tuple[np.ndarray, Box]:
    """``rgb`` scaled so ``box`` is ``n`` px on its short side, in the middle of a grey canvas; the box there."""
    scale = n / side(box)
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    canvas_side = max(CANVAS, h, w)
    canvas = np.full((canvas_side, canvas_side, 3), 128, np.uint8)
    top, left = (canvas_side - h) // 2, (canvas_side - w) // 2
    canvas[top : top + h, left : left + w] = small
    width, height = round(box.width * scale), round(box.height * scale)
    moved = Box(round(box.left * scale) + left, round(box.top * scale) + top, width, height)
    return canvas, moved


def report_lfw(engine: Engine, sizes: list[int], folds: int) -> None:
    pairs = [p for p in read_pairs(DATA / "lfw-dev" / "pairs-dev.txt") if p.fold < folds]
    thresholds = engine.thresholds
    rows: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    whole: dict[str, tuple[np.ndarray, Face, np.ndarray] | None] = {}

    def whole_face(path: str) -> tuple[np.ndarray, Face, np.ndarray] | None:
        if path not in whole:
            rgb = load_image(DATA / "lfw-dev" / path).rgb
            face = centre_face(engine, rgb)
            whole[path] = None if face is None else (rgb, face, embedding(engine, rgb, face))
        return whole[path]

    skipped = 0
    for pair in pairs:
        first, second = whole_face(pair.image1), whole_face(pair.image2)
        if first is None or second is None:
            skipped += 1
            continue
        rgb2, face2, vector2 = second
        score(rows["whole"], pair, engine.match(first[2], vector2).confidence, side(face2.box))
        for n in sizes:
            canvas, where = shrunk(rgb2, face2.box, n)
            faces = engine.detect(canvas, embed=False)
            found = [f for f in faces if f.box.iou(where) >= FOUND_IOU]
            rows[str(n)]["extra"].append(len(faces) - min(1, len(found)))
            if not found:
                score(rows[str(n)], pair, None, None)
                continue
            vector = embedding(engine, canvas, found[0])
            score(rows[str(n)], pair, engine.match(first[2], vector).confidence, side(found[0].box))
    same = sum(p.same for p in pairs)
    print(
        f"\n## lfw-dev pairs-dev.txt folds 0-{folds - 1}: {same} same-person, {len(pairs) - same} different-person "
        f"pairs ({skipped} left out: no face in a whole photo); second photo shrunk so its face is N px\n"
    )
    print(f"thresholds (confidence): 1e-4 {thresholds['1e-4']:.1f}, 1e-3 {thresholds['1e-3']:.1f}\n")
    print(
        "| face (px) | found | median box side | TAR at 1e-4 | TAR at 1e-3 | same-person median confidence "
        "| false accepts at 1e-4 | at 1e-3 | other boxes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label in ["whole", *map(str, sizes)]:
        r = rows[label]
        same_conf, diff_conf = np.array(r["same"], float), np.array(r["diff"], float)
        found = np.isfinite(same_conf).sum() + np.isfinite(diff_conf).sum()
        sides = [s for s in r["side"] if s is not None]

        def rate(conf: np.ndarray, key: str) -> str:
            hits = int(np.sum(np.nan_to_num(conf, nan=-1.0) >= thresholds[key]))
            return f"{hits}/{len(conf)}"

        print(
            f"| {label} | {found}/{len(same_conf) + len(diff_conf)} | {int(np.median(sides)) if sides else '-'} "
            f"| {rate(same_conf, '1e-4')} | {rate(same_conf, '1e-3')} "
            f"| {np.nanmedian(same_conf) if np.isfinite(same_conf).any() else float('nan'):.1f} "
            f"| {rate(diff_conf, '1e-4')} | {rate(diff_conf, '1e-3')} | {sum(r['extra']) if r['extra'] else '-'} |"
        )


def score(row: dict[str, list], pair: Pair, confidence: float | None, box_side: int | None) -> None:
    row["same" if pair.same else "diff"].append(np.nan if confidence is None else confidence)
    row["side"].append(box_side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=2, help="pairs-dev folds to use (400 pairs each)")
    parser.add_argument("--sizes", default="12,16,20,24,28,32,40,48,64", help="face sides (px) to measure")
    parser.add_argument("--skip-lfw", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engine = engine_seeing_all()
    print(f"detector {engine.settings.detection.detector}, identity model {engine.model_id}")
    start = time.perf_counter()
    report_groups(engine, sizes)
    if not args.skip_lfw:
        report_lfw(engine, sizes, args.folds)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
