"""RetinaFace's faces re-boxed by dlib's HOG (the default) or kept in RetinaFace's mapped box (``retinaface_rebox``
off): what the boxes, the group photos and the detect time change, in one run.

    OMP_NUM_THREADS=1 uv run python benchmarks/retinaface_rebox.py [--images 1000] [--timing-images 200]

- lfw-dev (the first ``--images`` of every person's photos in name order): RetinaFace runs once per image; each
  face is boxed both ways. Per face HOG confirms, the largest corner difference between the mapped box
  (``_RETINA_TO_DLIB``) and HOG's box, relative to HOG's box width (median, 90th, 99th percentile, max); how
  many faces HOG does not confirm (those keep the mapped box either way).
- group photos (``benchmarks/detectors.py``'s 43 labelled faces in 9 photos): faces found (IoU >= 0.4) and false
  positives, each way.
- ``Engine.detect`` (detection, landmarks left lazy, SFace embedding) per lfw-dev image, the two settings taking
  turns image by image (so machine load falls alike): ms per image and the ratio.

SFace's embedding aligns on RetinaFace's five points either way, so identity results do not change; what changes
is the reported ``face_rectangle`` and the box the lazy landmark fit starts from (attributes: run ``faceplus eval
attributes`` with ``FACEPLUS_RETINAFACE_REBOX=0`` and ``1``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from detectors import group_photos, score_groups  # benchmarks/detectors.py (this script's folder is on sys.path)
from faceplus.detection import DetectorChain
from faceplus.engine import Engine
from faceplus.imaging import load_image
from faceplus.models.dlib_models import DlibModels
from faceplus.settings import DetectionSettings, EngineSettings

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def corner_shift(mapped: tuple[float, ...], hog: tuple[float, ...]) -> float:
    """The largest corner difference between two (left, top, right, bottom) boxes, in widths of the second."""
    return max(abs(a - b) for a, b in zip(mapped, hog, strict=True)) / max(hog[2] - hog[0], 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--timing-images", type=int, default=200)
    args = parser.parse_args()

    images = sorted((DATA / "lfw-dev").glob("*/*.jpg"))[: args.images]
    dlib = DlibModels()
    chain = {rebox: DetectorChain(DetectionSettings(retinaface_rebox=rebox), dlib) for rebox in (True, False)}
    shifts, unconfirmed, faces = [], 0, 0
    for path in images:
        rgb = load_image(path).rgb
        for mapped in chain[True].retinaface_hits(rgb, 1):
            faces += 1
            hog = chain[True].hog_box(rgb, mapped, "retinaface")
            if hog is None:
                unconfirmed += 1
                continue
            shifts.append(corner_shift(mapped.box().corners, hog.box().corners))
    q = np.percentile(shifts, [50, 90, 99]) * 100
    print(
        f"lfw-dev, {len(images)} images, {faces} RetinaFace faces: HOG confirms {len(shifts)}, not {unconfirmed}; "
        f"mapped box vs HOG's, largest corner shift in % of HOG's width: median {q[0]:.1f}, 90th {q[1]:.1f}, "
        f"99th {q[2]:.1f}, max {max(shifts) * 100:.1f}",
        flush=True,
    )

    groups = [(load_image(path).rgb, truth) for path, truth in group_photos()]
    for rebox in (True, False):
        found, false = score_groups(groups, chain[rebox].retinaface)
        total = sum(len(t) for _, t in groups)
        print(
            f"group photos, rebox {'on ' if rebox else 'off'}: {found}/{total} faces found, {false} false", flush=True
        )

    engines = {
        rebox: Engine(EngineSettings(detection=DetectionSettings(retinaface_rebox=rebox))) for rebox in (True, False)
    }
    times: dict[bool, list[float]] = {True: [], False: []}
    timing = images[:: max(1, len(images) // args.timing_images)][: args.timing_images]
    for engine in engines.values():  # load every model before timing
        engine.detect(engine.load(str(timing[0])))
    for i, path in enumerate(timing):
        for rebox in (True, False) if i % 2 else (False, True):
            decoded = engines[rebox].load(str(path))
            start = time.perf_counter()
            engines[rebox].detect(decoded)
            times[rebox].append((time.perf_counter() - start) * 1000)
    on, off = statistics.mean(times[True]), statistics.mean(times[False])
    print(
        f"Engine.detect per lfw-dev image ({len(timing)} images, 1 thread, alternating): rebox on {on:.1f} ms, "
        f"off {off:.1f} ms (x{off / on:.2f}); medians {statistics.median(times[True]):.1f} / "
        f"{statistics.median(times[False]):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
