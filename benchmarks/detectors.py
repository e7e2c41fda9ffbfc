"""Which detector should be the default? Recall, false positives, speed and cost of each, measured.

    uv run python benchmarks/detectors.py [--lfw-images 500] [--fairface-images 1500] [--skip-alone]

Two tables, each with today's default as its baseline in the same run:
1. Each detector alone (no fallback chain), so the figures are its own:
   - group-photos: the 43 boxed faces of 9 PASCAL VOC photos (IoU >= 0.4 counts as found; a detection
     matching no box is a false positive);
   - lfw-dev: whether the centred face is found (a box containing the image centre), and extra boxes.
2. Whole chains (``DetectorChain.find``: the primary detector, then the fallbacks while nothing is found):
   the same, the group photos also with ``min_face`` lowered, fairface-dev's tight crops (images where no face
   is found; the first N images of labels.csv), which step answered (what each fallback adds), and photos
   without faces: crops of group-photo backgrounds away from every boxed face, noise, smooth noise, blank and
   4096 px images (images with any box = false positives; ms and peak memory per image, each chain measured
   in its own process so one chain's peak does not hide another's).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from faceplus.detection import DetectorChain
from faceplus.imaging import load_image
from faceplus.models.dlib_models import DlibModels
from faceplus.results import Box, Detection
from faceplus.settings import DetectionSettings

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT = DetectionSettings(budget_s=600.0)  # which steps run must not depend on this machine's load
LOW_MIN_FACE = 8


def detectors(chain: DetectorChain) -> dict[str, Callable[[np.ndarray], list[Detection]]]:
    return {
        "retinaface (re-boxed by HOG)": chain.retinaface,
        "blazeface (re-boxed by HOG)": chain.blazeface,
        "hog, upsample 1": lambda rgb: chain.hog(rgb, 1),
        "hog, upsample 2": lambda rgb: chain.hog(rgb, 2),
        "mmod cnn": chain.mmod,
    }


#: Chains compared: (name, settings, its steps; None: the chain's own).
CHAINS: list[tuple[str, DetectionSettings, Callable[[DetectorChain], list] | None]] = [
    ("blazeface chain (before)", replace(DEFAULT, detector="blazeface"), None),
    ("retinaface chain (now)", replace(DEFAULT, detector="retinaface"), None),
    ("retinaface alone", replace(DEFAULT, detector="retinaface"), lambda c: [c.retinaface_step]),
    (
        "retinaface + hog + short",
        replace(DEFAULT, detector="retinaface"),
        lambda c: [c.retinaface_step, c.scaled_hog, c.blazeface_step("short"), c.scaled_mmod],
    ),
]


class Chain:
    """A detector chain whose steps are numbered, recording which step answered each image."""

    def __init__(self, settings: DetectionSettings, steps: Callable[[DetectorChain], list] | None) -> None:
        self.chain = DetectorChain(settings, DlibModels())
        kept = self.chain.steps() if steps is None else steps(self.chain)
        self.names = [getattr(s, "__name__", "step") for s in kept]
        self.last = -1

        def tagged(i, step):
            def run(rgb, min_face, budget):
                self.last = i
                return step(rgb, min_face, budget)

            return run

        wrapped = [tagged(i, s) for i, s in enumerate(kept)]
        self.chain.steps = lambda: wrapped  # type: ignore[method-assign]

    def boxes(self, rgb: np.ndarray) -> list[Detection]:
        return self.find(rgb)[0]

    def boxes_low(self, rgb: np.ndarray) -> list[Detection]:
        """The boxes with ``min_face`` lowered to :data:`LOW_MIN_FACE`."""
        return self.find(rgb, LOW_MIN_FACE)[0]

    def find(self, rgb: np.ndarray, min_face: int | None = None) -> tuple[list[Detection], int]:
        self.last = -1
        hits = self.chain.find(rgb, min_face)
        return hits, (self.last if hits else -1)


def group_photos() -> list[tuple[Path, list[Box]]]:
    boxes: dict[str, list[Box]] = defaultdict(list)
    with (DATA / "group-photos" / "boxes.csv").open() as f:
        for row in csv.DictReader(f):
            boxes[row["file"]].append(Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"])))
    return [(DATA / "group-photos" / name, truth) for name, truth in boxes.items()]


def score_groups(groups, detect) -> tuple[int, int]:
    """(faces found, false positives) over the group photos."""
    found = fp = 0
    for rgb, truth in groups:
        matched = set()
        for hit in detect(rgb):
            box = hit.box()
            best = max(range(len(truth)), key=lambda i: box.iou(truth[i]))
            if box.iou(truth[best]) >= 0.4:
                matched.add(best)
            else:
                fp += 1
        found += len(matched)
    return found, fp


def score_lfw(images, detect) -> tuple[int, int, int]:
    """(centre face found, extra boxes, centre boxes drawn HOG-style) over lfw-dev images."""
    centre = extra = hog_style = 0
    for rgb in images:
        cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
        hits = detect(rgb)
        inside = [h for h in hits if h.left <= cx <= h.right and h.top <= cy <= h.bottom]
        centre += bool(inside)
        hog_style += bool(inside) and inside[0].style == "hog"
        extra += len(hits) - min(1, len(inside))
    return centre, extra, hog_style


def fairface_misses(chain: Chain, images: list[np.ndarray], steps: Counter[str]) -> int:
    """Images where the chain finds no face; ``steps`` counts which step answered each image."""
    missed = 0
    for rgb in images:
        hits, step = chain.find(rgb)
        missed += not hits
        steps[chain.names[step] if step >= 0 else "none"] += 1
    return missed


def background_crops(groups) -> list[np.ndarray]:
    """Strips of the group photos above, below, left and right of every boxed face (with a margin): no face."""
    crops = []
    for rgb, truth in groups:
        h, w = rgb.shape[:2]
        margin = max(b.width for b in truth)
        x0 = min(b.left for b in truth) - margin
        x1 = max(b.right for b in truth) + margin
        y0 = min(b.top for b in truth) - margin
        y1 = max(b.bottom for b in truth) + margin
        for crop in (rgb[: max(y0, 0)], rgb[max(y1, 0) :], rgb[:, : max(x0, 0)], rgb[:, max(x1, 0) :]):
            if min(crop.shape[:2]) >= 64:
                crops.append(np.ascontiguousarray(crop))
    return crops


def no_face_images(groups) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(5)]
    smooth = [cv2.GaussianBlur(n, (0, 0), 6) for n in noise]
    smooth = [cv2.normalize(s, None, 0, 255, cv2.NORM_MINMAX) for s in smooth]
    return {
        "group backgrounds": background_crops(groups),
        "noise 640x480": noise,
        "smooth noise 640x480": smooth,
        "blank 4096x4096": [np.full((4096, 4096, 3), 128, np.uint8)],
        "noise 4096x4096": [rng.integers(0, 256, (4096, 4096, 3), dtype=np.uint8)],
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def no_face_cost(index: int) -> dict[str, tuple[int, int, float, float]]:
    """For chain ``CHAINS[index]``, run in a fresh process: per kind (images with a box, images, CPU ms per image,
    peak MB above the resident size before the kind)."""
    name, settings, steps = CHAINS[index]
    chain = Chain(settings, steps)
    groups = [(load_image(p).rgb, truth) for p, truth in group_photos()]
    chain.find(groups[0][0])  # load the models outside the measurement: the primary on a face,
    chain.find(np.full((480, 640, 3), 128, np.uint8))  # the fallbacks on a blank photo
    out = {}
    for kind, images in no_face_images(groups).items():
        before = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM)
        start = time.process_time()
        boxed = sum(bool(chain.find(rgb)[0]) for rgb in images)
        ms = (time.process_time() - start) / len(images) * 1000
        out[kind] = (boxed, len(images), ms, (_status_kb("VmHWM") - before) / 1024)
    return out


def table(title: str, columns: tuple[str, ...], rows: list[tuple[str, tuple]], width: int = 11) -> None:
    print(f"\n{title}")
    print(f"{'':<30} " + " ".join(f"{c:>{width}}" for c in columns))
    for name, cells in rows:
        print(f"{name:<30} " + " ".join(f"{c!s:>{width}}" for c in cells))


def timed(fn, *args):
    """``fn(*args)`` and the seconds it took: (wall, this process's CPU). CPU time is the steadier figure on a
    machine other jobs load (every session here runs with one thread)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, (time.perf_counter() - start, time.process_time() - cpu)


def per_image_ms(seconds: tuple[float, float], images: int) -> str:
    """Wall/CPU milliseconds per image."""
    return "/".join(f"{s / images * 1000:.1f}" for s in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw-images", type=int, default=500)
    parser.add_argument("--mmod-lfw-images", type=int, default=100, help="MMOD is slow: fewer lfw images")
    parser.add_argument("--fairface-images", type=int, default=1500)
    parser.add_argument("--skip-alone", action="store_true", help="only the chains")
    args = parser.parse_args()
    groups = [(load_image(p).rgb, truth) for p, truth in group_photos()]
    total = sum(len(t) for _, t in groups)
    lfw_paths = sorted((DATA / "lfw-dev").glob("*/*.jpg"))
    lfw = [load_image(p).rgb for p in lfw_paths[:: max(1, len(lfw_paths) // args.lfw_images)][: args.lfw_images]]
    with (DATA / "fairface-dev" / "labels.csv").open() as f:
        names = [row["file"] for row in csv.DictReader(f)][: args.fairface_images]
    fairface = [load_image(DATA / "fairface-dev" / name).rgb for name in names]

    if not args.skip_alone:
        chain = DetectorChain(replace(DEFAULT, min_face=0), DlibModels())
        rows = []
        for name, detect in detectors(chain).items():
            detect(groups[0][0])  # load the model outside the timing
            (found, fp), seconds = timed(score_groups, groups, detect)
            images = lfw[: args.mmod_lfw_images] if name.startswith("mmod") else lfw
            (centre, extra, _), lfw_s = timed(score_lfw, images, detect)
            rows.append(
                (
                    name,
                    (
                        f"{found}/{total}",
                        fp,
                        per_image_ms(seconds, len(groups)),
                        f"{centre}/{len(images)}",
                        extra,
                        per_image_ms(lfw_s, len(images)),
                    ),
                )
            )
        columns = ("group found", "group FP", "group ms", "lfw centre", "lfw extra", "lfw ms")  # ms: wall/CPU
        table("Each detector alone (min_face 0; ms: wall/CPU per image)", columns, rows)

    rows, answered = [], {}
    for name, settings, steps in CHAINS:
        chain = Chain(settings, steps)
        chain.find(groups[0][0])
        (centre, extra, hog_style), lfw_s = timed(score_lfw, lfw, chain.boxes)
        (found, fp), group_s = timed(score_groups, groups, chain.boxes)
        low_found, low_fp = score_groups(groups, chain.boxes_low)
        steps: Counter[str] = Counter()
        (missed, fair_s) = timed(fairface_misses, chain, fairface, steps)
        answered[name] = dict(steps)
        rows.append(
            (
                name,
                (
                    f"{centre}/{len(lfw)}",
                    extra,
                    f"{hog_style}/{centre}",
                    per_image_ms(lfw_s, len(lfw)),
                    f"{found}/{total}",
                    fp,
                    per_image_ms(group_s, len(groups)),
                    f"{low_found}/{total}",
                    low_fp,
                    f"{missed}/{len(fairface)}",
                    per_image_ms(fair_s, len(fairface)),
                ),
            )
        )
    columns = (
        "lfw centre",
        "lfw extra",
        "HOG-style",
        "lfw ms",
        "group",
        "group FP",
        "group ms",
        f"group@{LOW_MIN_FACE}px",
        f"FP@{LOW_MIN_FACE}px",
        "ff no face",
        "ff ms",
    )
    title = f"Chains (default min_face {DEFAULT.min_face}; ff = fairface-dev, first {len(fairface)}; ms: wall/CPU)"
    table(title, columns, rows, width=12)
    print("\nfairface-dev: which step answered (none: no face found)")
    for name, steps in answered.items():
        print(f"  {name:<28} {steps}")

    print("\nPhotos without faces: images with a box / images, CPU ms per image, peak MB above resident (own process)")
    for index, (name, _, _) in enumerate(CHAINS):
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:  # a fresh process per chain
            cost = pool.submit(no_face_cost, index).result()
        cells = "  ".join(f"{kind}: {b}/{n} {ms:.0f} ms {mb:.0f} MB" for kind, (b, n, ms, mb) in cost.items())
        print(f"  {name:<28} {cells}")


if __name__ == "__main__":
    main()
