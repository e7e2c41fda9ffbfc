"""HOG re-boxing crop geometry: does a smaller crop give the same boxes, faster?

    uv run python benchmarks/rebox_crop.py [--images 4033] [--variant 130:2 --variant 90.28:2 ...]

BlazeFace (full range) runs once per lfw-dev image; every face it finds is then re-boxed by HOG
(upsampling 0) under each variant ``face_px:crop_sides`` (the face scaled to ``face_px`` wide, the crop
``crop_sides`` times its side), the variants taking turns in a rotating order so they see the same load.
The first variant is the reference. Per variant: faces HOG confirms, faces the reference confirms and it
does not (they would fall back to the mapped BlazeFace box and the landmark re-fit), the largest corner
difference from the reference box relative to the reference box's width (median, 99th percentile, max),
and milliseconds per re-box call (mean and median). Then each variant runs BlazeFace with its re-boxing
(``DetectorChain.blazeface``, the default chain's first step) on the 9 group photos of
``benchmarks/detectors.py``: faces found (IoU >= 0.4 with a labelled box), false positives, and how many
faces kept BlazeFace's mapped box because HOG did not confirm them. Last, the engine's whole detect stage
(``Engine.find_boxes``, as ``benchmarks/throughput.py`` times it) and the whole ``Engine.detect`` per image,
ms per image over ``--timing-images`` lfw-dev images, the variants taking turns image by image.

dlib's HOG pyramid steps by 5/6 from an 80 px window, so scaling the face by a power of 5/6
(130 -> 108.33 -> 90.28) keeps the pyramid's scales and its 8 px cell grid at the same places in the
photo: the boxes should stay, with fewer pyramid levels to scan.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import faceplus.detection as detection
from detectors import group_photos  # benchmarks/detectors.py (this script's folder is on sys.path)
from faceplus.detection import _BLAZE_TO_DLIB, DetectorChain, to_dlib_box
from faceplus.imaging import load_image
from faceplus.models.dlib_models import DlibModels
from faceplus.results import BoxStyle, Detection
from faceplus.settings import DetectionSettings

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def mapped_faces(chain: DetectorChain, rgb: np.ndarray) -> list[Detection]:
    """BlazeFace's full-range faces mapped to HOG's convention, as ``DetectorChain.blazeface`` maps them."""
    return [
        Detection(*to_dlib_box(*det.box, _BLAZE_TO_DLIB), float(det.score), "blazeface-box", BoxStyle.FOREIGN)
        for det in chain._blazeface.detect(rgb)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=0, help="0: all lfw-dev images")
    parser.add_argument("--timing-images", type=int, default=500)
    parser.add_argument("--variant", action="append", help="face_px:crop_sides; the first is the reference")
    args = parser.parse_args()
    variants = [tuple(float(v) for v in s.split(":")) for s in (args.variant or ["130:2", "108.33:2", "90.28:2"])]
    chain = DetectorChain(DetectionSettings(min_face=0), DlibModels())
    paths = sorted((DATA / "lfw-dev").glob("*/*.jpg"))
    if args.images:
        paths = paths[:: max(1, len(paths) // args.images)][: args.images]

    def rebox(rgb: np.ndarray, hit: Detection, face_px: float, crop: float) -> Detection | None:
        detect = lambda c: chain.dlib.detect_hog(c, 0, chain.settings.hog_threshold)  # noqa: E731
        return chain._rebox(rgb, hit, detect, "blazeface", face_px, crop)

    boxes: list[list[Detection | None]] = [[] for _ in variants]
    seconds: list[list[float]] = [[] for _ in variants]
    turn = 0
    for path in paths:
        rgb = load_image(path).rgb
        for hit in mapped_faces(chain, rgb):
            order = [(turn + k) % len(variants) for k in range(len(variants))]
            turn += 1
            for i in order:
                start = time.perf_counter()
                box = rebox(rgb, hit, *variants[i])
                seconds[i].append(time.perf_counter() - start)
                boxes[i].append(box)
    faces = len(boxes[0])
    print(f"{len(paths)} lfw-dev images, {faces} BlazeFace faces; load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'face_px:crop':<14} {'confirmed':>9} {'lost':>5} {'gained':>6} {'diff med':>9} {'p99':>7} "
        f"{'max':>7} {'same<1px':>8} {'ms mean':>8} {'ms med':>7} {'x ref':>6}"
    )
    ref_ms = float(np.mean(seconds[0])) * 1000
    for i, (face_px, crop) in enumerate(variants):
        diffs, lost, gained, same = [], 0, 0, 0
        for ref, box in zip(boxes[0], boxes[i], strict=True):
            if ref is not None and box is None:
                lost += 1
            elif ref is None and box is not None:
                gained += 1
            elif ref is not None and box is not None:
                corner = max(
                    abs(a - b)
                    for a, b in zip(
                        (ref.left, ref.top, ref.right, ref.bottom),
                        (box.left, box.top, box.right, box.bottom),
                        strict=True,
                    )
                )
                diffs.append(corner / (ref.right - ref.left))
                same += corner < 1.0
        confirmed = sum(b is not None for b in boxes[i])
        ms = float(np.mean(seconds[i])) * 1000
        d = np.array(diffs) if diffs else np.zeros(1)
        print(
            f"{face_px:g}:{crop:g}".ljust(14)
            + f" {confirmed:>9} {lost:>5} {gained:>6} {np.median(d):>9.4f} {np.percentile(d, 99):>7.4f}"
            f" {d.max():>7.4f} {same:>8} {ms:>8.2f} {np.median(seconds[i]) * 1000:>7.2f} {ms / ref_ms:>6.2f}"
        )

    print("group photos, BlazeFace re-boxed by HOG (the default chain's first step):")
    groups = [(load_image(p).rgb, truth) for p, truth in group_photos()]
    total = sum(len(t) for _, t in groups)
    for face_px, crop in variants:
        detection._HOG_FACE_PX, detection._HOG_CROP = face_px, crop
        found = fp = unconfirmed = 0
        for rgb, truth in groups:
            matched = set()
            for hit in chain.blazeface(rgb):
                unconfirmed += hit.detector == "blazeface-box"
                best = max(range(len(truth)), key=lambda i: hit.box().iou(truth[i]))
                if hit.box().iou(truth[best]) >= 0.4:
                    matched.add(best)
                else:
                    fp += 1
            found += len(matched)
        print(f"  {face_px:g}:{crop:g}: found {found}/{total}, false positives {fp}, HOG did not confirm {unconfirmed}")

    from faceplus import Engine

    engine = Engine()
    engine.detect(paths[0])
    all_paths = sorted((DATA / "lfw-dev").glob("*/*.jpg"))
    timing = all_paths[:: max(1, len(all_paths) // args.timing_images)][: args.timing_images]
    stage: list[list[float]] = [[] for _ in variants]
    whole: list[list[float]] = [[] for _ in variants]
    for n, path in enumerate(timing):
        rgb = load_image(path).rgb
        for i in [(n + k) % len(variants) for k in range(len(variants))]:
            detection._HOG_FACE_PX, detection._HOG_CROP = variants[i]
            start = time.perf_counter()
            engine.find_boxes(rgb)
            stage[i].append(time.perf_counter() - start)
            start = time.perf_counter()
            engine.detect(path)
            whole[i].append(time.perf_counter() - start)
    print(f"{len(timing)} lfw-dev images, ms per image (mean), load average {os.getloadavg()[0]:.2f}:")
    for i, (face_px, crop) in enumerate(variants):
        print(
            f"  {face_px:g}:{crop:g}: detect stage {np.mean(stage[i]) * 1000:.2f} "
            f"({np.mean(stage[i]) / np.mean(stage[0]):.2f}x), Engine.detect {np.mean(whole[i]) * 1000:.2f} "
            f"({np.mean(whole[i]) / np.mean(whole[0]):.2f}x)"
        )


if __name__ == "__main__":
    main()
