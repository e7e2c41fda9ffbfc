"""Which detector should be the default? Recall, false positives and speed of each, measured.

    uv run python benchmarks/detectors.py [--lfw-images 500]

- group-photos: the 43 boxed faces of 9 PASCAL VOC photos (IoU >= 0.4 counts as found; a detection
  matching no box is a false positive).
- lfw-dev: whether the centred face is found (a box containing the image centre), and extra boxes.
Each detector runs alone here (no fallback chain), so the figures are its own.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from pathlib import Path

from faceplus.detection import DetectorChain
from faceplus.imaging import load_image
from faceplus.models.dlib_models import DlibModels
from faceplus.results import Box
from faceplus.settings import DetectionSettings

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def detectors(chain: DetectorChain) -> dict:
    return {
        "blazeface (re-boxed by HOG)": chain.blazeface,
        "hog, upsample 1": lambda rgb: chain.hog(rgb, 1),
        "hog, upsample 2": lambda rgb: chain.hog(rgb, 2),
        "mmod cnn": chain.mmod,
    }


def group_photos() -> list[tuple[Path, list[Box]]]:
    boxes: dict[str, list[Box]] = defaultdict(list)
    with (DATA / "group-photos" / "boxes.csv").open() as f:
        for row in csv.DictReader(f):
            boxes[row["file"]].append(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])))
    return [(DATA / "group-photos" / name, truth) for name, truth in boxes.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw-images", type=int, default=500)
    parser.add_argument("--mmod-lfw-images", type=int, default=100, help="MMOD is slow: fewer lfw images")
    args = parser.parse_args()
    chain = DetectorChain(DetectionSettings(min_face=0), DlibModels())
    groups = [(load_image(p).rgb, truth) for p, truth in group_photos()]
    lfw_paths = sorted((DATA / "lfw-dev").glob("*/*.jpg"))
    lfw = [load_image(p).rgb for p in lfw_paths[:: max(1, len(lfw_paths) // args.lfw_images)][: args.lfw_images]]
    columns = ("group found", "group FP", "group ms", "lfw centre", "lfw extra", "lfw ms")
    print(f"{'detector':<30} " + " ".join(f"{c:>11}" for c in columns))
    for name, detect in detectors(chain).items():
        detect(groups[0][0])  # load the model outside the timing
        found = fp = 0
        start = time.perf_counter()
        for rgb, truth in groups:
            matched = set()
            for hit in detect(rgb):
                box = Box.from_corners(hit.left, hit.top, hit.right, hit.bottom)
                best = max(range(len(truth)), key=lambda i: box.iou(truth[i]))
                if box.iou(truth[best]) >= 0.4:
                    matched.add(best)
                else:
                    fp += 1
            found += len(matched)
        group_ms = (time.perf_counter() - start) / len(groups) * 1000
        images = lfw[: args.mmod_lfw_images] if name.startswith("mmod") else lfw
        centre = extra = 0
        start = time.perf_counter()
        for rgb in images:
            cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
            hits = detect(rgb)
            inside = [h for h in hits if h.left <= cx <= h.right and h.top <= cy <= h.bottom]
            centre += bool(inside)
            extra += len(hits) - min(1, len(inside))
        lfw_ms = (time.perf_counter() - start) / len(images) * 1000
        total = sum(len(t) for _, t in groups)
        cells = (f"{found}/{total}", fp, f"{group_ms:.1f}", f"{centre}/{len(images)}", extra, f"{lfw_ms:.1f}")
        print(f"{name:<30} " + " ".join(f"{c:>11}" for c in cells))


if __name__ == "__main__":
    main()
