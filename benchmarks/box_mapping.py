"""Fit the detector box -> dlib box mappings (``_RETINA_TO_DLIB``, ``_BLAZE_TO_DLIB``) on one set, test them on another.

    OMP_NUM_THREADS=1 uv run python benchmarks/box_mapping.py [--fit fairface] [--fit-images 1500] [--test-images 1000]

A face HOG does not re-box keeps its detector's box mapped to dlib's HOG convention by four numbers: left/top shift
and width/height scale, as fractions of the detector's box. They are fitted here as the mean of those four ratios
over the faces both the detector (RetinaFace, BlazeFace full range, on the whole image) and dlib's HOG find.

``--target hog`` (default): dlib's HOG on the whole image at upsampling 0 (its box overlapping the mapped box most,
IoU >= 0.4), each image first scaled by a factor in [1, 6/5) drawn from its index: HOG's box sizes step by 6/5 (its
pyramid), and one set's faces are much alike in size, so without this the mean would depend on where they fall.
``--target rebox``: the engine's own re-box (``DetectorChain.hog_box``). Its crop is scaled from the mapped box, so
its box width is a fixed multiple of the mapped width at each pyramid level: fitted against it the mapping chases
itself (BlazeFace's width scale 0.968 when placed from 0.960, 0.933 when placed from 0.968).

fairface-dev's faces fill its 224 px crops (RetinaFace's box a median 174 px wide), so HOG's window does not fit
around them and its boxes snap to the frame (unpadded, the height scale fitted against the re-box is 0.97 against
0.82 on lfw-dev photos). Each fit image is therefore padded by ``--pad`` times its side on every side, edges
replicated. ``--fit lfw-framed`` checks that this recovers what whole photos give: lfw-dev photos cut as
fairface-dev's are (a square 224/174 times RetinaFace's box width about its centre, resized to 224 px), padded alike.

- ``--fit fairface`` (default): the first ``--fit-images`` rows of fairface-dev/labels.csv (CC BY 4.0, may ship);
  ``--fit lfw`` / ``lfw-framed``: lfw-dev's images after the first ``--test-images`` (research-only: comparison).
- test: the first ``--test-images`` lfw-dev images in name order, whole photos (dithered as above), held out. Per
  face both find, the largest corner difference between the mapped box and the target box in % of the target's
  width (median, 90th, 99th percentile), with the constants the code had before (fitted on lfw-dev), the constants
  in the code and the fitted ones.
- then, since the default path re-boxes every face from a crop placed and scaled from the mapped box: what the
  code's mapping changes there against the one before (faces HOG confirms, how far its boxes move, and how far
  each lies from dlib's HOG box on the whole image).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import cv2
import numpy as np

from faceplus.detection import _BLAZE_TO_DLIB, _RETINA_TO_DLIB, DetectorChain, to_dlib_box
from faceplus.imaging import load_image
from faceplus.models.dlib_models import DlibModels
from faceplus.results import Box, BoxStyle, Detection
from faceplus.settings import DetectionSettings

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

Mapping = tuple[float, float, float, float]
#: (detector's box as left, top, width, height; HOG's box as left, top, right, bottom)
Pair = tuple[tuple[float, float, float, float], tuple[float, float, float, float]]


def detector_boxes(chain: DetectorChain, rgb: np.ndarray) -> dict[str, list[tuple[float, float, float, float]]]:
    """Each detector's raw boxes (left, top, width, height) on the whole image, as its chain step sees it."""
    retina = [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in (d.box for d in chain._retinaface.detect(rgb))]
    blaze = [tuple(float(v) for v in d.box) for d in chain._blazeface.detect(rgb)]
    return {"retinaface": retina, "blazeface": blaze}  # type: ignore[dict-item]


#: fairface-dev's framing: its RetinaFace boxes are a median 174 px wide in the 224 px crop (first 300 images).
FRAME = 224 / 174

CURRENT: dict[str, Mapping] = {"retinaface": _RETINA_TO_DLIB, "blazeface": _BLAZE_TO_DLIB}
#: The constants the code had before they were fitted on fairface-dev (fitted on lfw-dev, research-only).
BEFORE: dict[str, Mapping] = {"retinaface": (-0.101, 0.129, 1.123, 0.824), "blazeface": (0.0, 0.015, 0.96, 0.956)}


def framed(chain: DetectorChain, rgb: np.ndarray) -> np.ndarray | None:
    """An lfw-dev photo cut as fairface-dev's crops are: a square ``FRAME`` times RetinaFace's box width about its
    centre, resized to 224 px (None where RetinaFace finds no face)."""
    boxes = detector_boxes(chain, rgb)["retinaface"]
    if not boxes:
        return None
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    half = FRAME * w / 2
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
    x1, y1 = min(rgb.shape[1], round(cx + half)), min(rgb.shape[0], round(cy + half))
    return np.ascontiguousarray(cv2.resize(rgb[y0:y1, x0:x1], (224, 224), interpolation=cv2.INTER_AREA))


def padded(rgb: np.ndarray, pad: float) -> np.ndarray:
    """``rgb`` with ``pad`` times its side added on every side, so HOG's window and re-box crop fit around a face
    that fills the frame."""
    p = round(pad * max(rgb.shape[:2]))
    return np.ascontiguousarray(cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_REPLICATE))


def dithered(rgb: np.ndarray, index: int) -> np.ndarray:
    """``rgb`` scaled by a factor in [1, 6/5) drawn from ``index``: HOG's box sizes step by 6/5 (its pyramid), and the
    faces of one set are alike in size, so without this the set's mean ratio would depend on where they fall."""
    scale = (6 / 5) ** np.random.default_rng(index).random()
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR))


def prepared(chain: DetectorChain, path: Path, index: int, frame: bool, pad: float) -> np.ndarray | None:
    rgb = load_image(path).rgb
    if frame:
        cut = framed(chain, rgb)
        if cut is None:
            return None
        rgb = cut
    return dithered(padded(rgb, pad) if pad else rgb, index)


def whole_hog(chain: DetectorChain, rgb: np.ndarray, box: tuple[float, float, float, float], mapping: Mapping):
    """dlib's HOG box (upsampling 0, whole image) overlapping the mapped box most (IoU >= 0.4), or None."""
    target = Box.from_corners(*to_dlib_box(*box, mapping))
    best, best_iou = None, 0.4
    for hit in chain.hog(rgb, 0):
        iou = hit.box().iou(target)
        if iou > best_iou:
            best, best_iou = (hit.left, hit.top, hit.right, hit.bottom), iou
    return best


def pairs(
    chain: DetectorChain, images: list[Path], target: str, frame: bool = False, pad: float = 0.0
) -> tuple[dict[str, list[Pair]], dict[str, int]]:
    """Per detector, (its box, the target box) for every face the target finds too, and how many faces it found."""
    found: dict[str, list[Pair]] = {name: [] for name in CURRENT}
    faces = dict.fromkeys(CURRENT, 0)
    for index, path in enumerate(images):
        rgb = prepared(chain, path, index, frame, pad)
        if rgb is None:
            continue
        for name, boxes in detector_boxes(chain, rgb).items():
            for box in boxes:
                faces[name] += 1
                if target == "hog":
                    hog = whole_hog(chain, rgb, box, CURRENT[name])
                else:
                    hog = rebox(chain, rgb, box, CURRENT[name], name)
                if hog is not None:
                    found[name].append((box, hog))
    return found, faces


def rebox(
    chain: DetectorChain, rgb: np.ndarray, box: tuple[float, float, float, float], mapping: Mapping, name: str
) -> tuple[float, float, float, float] | None:
    """HOG's box (left, top, right, bottom) for a detector's box, its re-box crop placed from ``mapping``."""
    hog = chain.hog_box(rgb, Detection(*to_dlib_box(*box, mapping), 1.0, name, BoxStyle.FOREIGN), name)
    return None if hog is None else (hog.left, hog.top, hog.right, hog.bottom)


def placement_change(chain: DetectorChain, images: list[Path], name: str) -> list[str]:
    """What placing the re-box crop from the code's mapping instead of ``BEFORE``'s changes in HOG's re-box (the
    default path re-boxes every face): faces confirmed each way, how far the boxes move, and how far each lies from
    dlib's HOG box on the whole (dithered) image, in % of the box width."""
    confirmed = {"before": 0, "code": 0}
    moves: list[float] = []
    off: dict[str, list[float]] = {"before": [], "code": []}
    for index, path in enumerate(images):
        rgb = prepared(chain, path, index, False, 0.0)
        assert rgb is not None
        for box in detector_boxes(chain, rgb)[name]:
            reboxed = {
                "before": rebox(chain, rgb, box, BEFORE[name], name),
                "code": rebox(chain, rgb, box, CURRENT[name], name),
            }
            whole = whole_hog(chain, rgb, box, CURRENT[name])
            for key, got in reboxed.items():
                confirmed[key] += got is not None
                if got is not None and whole is not None:
                    off[key].append(corner_error(got, whole))
            a, b = reboxed["before"], reboxed["code"]
            if a is not None and b is not None:
                moves.append(corner_error(b, a))
    q = np.percentile(moves, [50, 90, 99])
    lines = [
        f"re-box placed from the code's mapping instead of the one before: confirms {confirmed['code']} (before "
        f"{confirmed['before']}); of {len(moves)} confirmed both ways, corners move median {q[0]:.1f}, "
        f"90th {q[1]:.1f}, 99th {q[2]:.1f}% of the width"
    ]
    for key, errors in off.items():
        q = np.percentile(errors, [50, 90, 99])
        lines.append(
            f"re-box placed from the mapping {key} vs dlib's HOG on the whole image ({len(errors)} faces): "
            f"median {q[0]:.1f}, 90th {q[1]:.1f}, 99th {q[2]:.1f}%"
        )
    return lines


def corner_error(box: tuple[float, ...], reference: tuple[float, ...]) -> float:
    """The largest corner difference between two (left, top, right, bottom) boxes, in % of the reference's width."""
    return max(abs(a - b) for a, b in zip(box, reference, strict=True)) / (reference[2] - reference[0]) * 100


def ratios(found: list[Pair]) -> np.ndarray:
    """Per face, HOG's box as (left shift, top shift, width scale, height scale) of the detector's box."""
    return np.array(
        [((x0 - x) / w, (y0 - y) / h, (x1 - x0) / w, (y1 - y0) / h) for (x, y, w, h), (x0, y0, x1, y1) in found]
    )


def corner_errors(found: list[Pair], mapping: Mapping) -> np.ndarray:
    """Per face, the largest corner difference between the mapped box and HOG's, in % of HOG's box width."""
    return np.array([corner_error(to_dlib_box(*box, mapping), hog) for box, hog in found])


def fmt(mapping: Mapping | np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in mapping) + ")"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit", choices=("fairface", "lfw", "lfw-framed"), default="fairface")
    parser.add_argument("--target", choices=("hog", "rebox"), default="hog")
    parser.add_argument("--pad", type=float, default=0.5, help="fairface-dev / lfw-framed padding, x the side")
    parser.add_argument("--fit-images", type=int, default=1500)
    parser.add_argument("--test-images", type=int, default=1000)
    args = parser.parse_args()

    lfw = sorted((DATA / "lfw-dev").glob("*/*.jpg"))
    test = lfw[: args.test_images]
    if args.fit == "fairface":
        with (DATA / "fairface-dev" / "labels.csv").open() as f:
            fit = [DATA / "fairface-dev" / row["file"] for row in csv.DictReader(f)][: args.fit_images]
    else:
        fit = lfw[args.test_images :][: args.fit_images]
    chain = DetectorChain(DetectionSettings(), DlibModels())

    pad = 0.0 if args.fit == "lfw" else args.pad
    fit_found, fit_faces = pairs(chain, fit, args.target, frame=args.fit == "lfw-framed", pad=pad)
    test_found, test_faces = pairs(chain, test, args.target)
    what = "dlib's HOG on the whole image" if args.target == "hog" else "the re-box"
    for name, current in CURRENT.items():
        r = ratios(fit_found[name])
        fitted = tuple(float(v) for v in r.mean(0).round(3))
        print(
            f"{name}: fit on {args.fit} ({len(fit)} images, padded {pad}) against {what}: {fit_faces[name]} faces, "
            f"{len(r)} found by both; mean {fmt(fitted)} (median {fmt(np.median(r, 0))}); in the code {fmt(current)}",
            flush=True,
        )
        print(f"  lfw-dev test set's own mean (for comparison only): {fmt(ratios(test_found[name]).mean(0))}")
        for label, mapping in (("before (lfw-dev fit)", BEFORE[name]), ("in the code", current), ("fitted", fitted)):
            q = np.percentile(corner_errors(test_found[name], mapping), [50, 90, 99])
            print(
                f"  lfw-dev first {len(test)} images, {test_faces[name]} faces, {len(test_found[name])} found by both: "
                f"mapped box {label} vs {what}, largest corner error in % of its width: median {q[0]:.1f}, "
                f"90th {q[1]:.1f}, 99th {q[2]:.1f}",
                flush=True,
            )
    if CURRENT != BEFORE:
        for name in CURRENT:
            for line in placement_change(chain, test, name):
                print(f"{name}: lfw-dev first {len(test)} images: {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
