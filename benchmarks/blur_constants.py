"""What the blur constants (faceplus.attributes.blur) rest on, measured on a set's aligned face chips.

    OMP_NUM_THREADS=1 uv run python benchmarks/blur_constants.py [--faces 40] [--sets fairface lfw]

Per set (``fairface``: the first ``--faces`` fairface-dev crops, CC BY 4.0; ``lfw``: the first photo of the first
``--faces`` lfw-dev people, research-only, for comparison), each face's blur chip (the engine's 5 points) is measured
as is and blurred on the chip itself (so sigma and length are in chip pixels whatever the photo's scale): Gaussian
sigma 1, 2, 4 and a 9-pixel horizontal / vertical motion blur. Printed:

- the face anisotropy: the mean per-direction re-blur ratio less the mean over directions, on the chips as they
  are (``FACE_ANISOTROPY``);
- per variant, with that anisotropy subtracted (the set's own), the median most / least blurred direction (what
  ``SHARP`` / ``BLURRED`` scale to 0 / 100) and the spread between them (median, 90th percentile: what
  ``MOTION_SHARP`` / ``MOTION_BLURRED`` scale), and the median blurness and motionblur with the constants in the code.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import cv2
import numpy as np

from faceplus.attributes.blur import (
    BLURRED,
    DIRECTIONS,
    FACE_ANISOTROPY,
    MOTION_BLURRED,
    MOTION_SHARP,
    SHARP,
    _scale,
    face_gray,
    reblur_ratio,
)
from faceplus.engine import Engine
from faceplus.imaging import load_image

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def motion(gray: np.ndarray, length: int, vertical: bool) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    if vertical:
        kernel[:, length // 2] = 1.0 / length
    else:
        kernel[length // 2, :] = 1.0 / length
    return np.asarray(cv2.filter2D(gray, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT))


VARIANTS = {
    "as is": lambda g: g,
    "gauss 1": lambda g: cv2.GaussianBlur(g, (0, 0), 1),
    "gauss 2": lambda g: cv2.GaussianBlur(g, (0, 0), 2),
    "gauss 4": lambda g: cv2.GaussianBlur(g, (0, 0), 4),
    "motion 9 h": lambda g: motion(g, 9, False),
    "motion 9 v": lambda g: motion(g, 9, True),
}


def files(name: str, count: int) -> list[Path]:
    if name == "fairface":
        with (DATA / "fairface-dev" / "labels.csv").open() as f:
            return [DATA / "fairface-dev" / row["file"] for row in csv.DictReader(f)][:count]
    people = sorted(p for p in (DATA / "lfw-dev").iterdir() if p.is_dir())[:count]
    return [sorted(p.glob("*.jpg"))[0] for p in people]


def chips(engine: Engine, paths: list[Path]) -> list[np.ndarray]:
    out = []
    for path in paths:
        rgb = load_image(path).rgb
        faces = engine.detect(rgb, embed=False)
        if faces:
            out.append(face_gray(rgb, faces[0].landmarks5))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=40)
    parser.add_argument("--sets", nargs="+", default=["fairface", "lfw"])
    args = parser.parse_args()
    engine = Engine()
    for name in args.sets:
        grays = chips(engine, files(name, args.faces))
        raw = {v: np.array([[reblur_ratio(f(g), a) for a in DIRECTIONS] for g in grays]) for v, f in VARIANTS.items()}
        anisotropy = (raw["as is"] - raw["as is"].mean(1, keepdims=True)).mean(0)
        print(
            f"{name}: {len(grays)} faces; anisotropy {tuple(round(float(a), 3) for a in anisotropy)} "
            f"(in the code {FACE_ANISOTROPY})"
        )
        print("  variant      most / least blurred (median) | spread median / 90th | blurness / motionblur (median)")
        for variant, ratios in raw.items():
            corrected = ratios - anisotropy
            high, low = corrected.max(1), corrected.min(1)
            spread = high - low
            code = ratios - np.array(FACE_ANISOTROPY)
            blurness = [_scale(float(h), SHARP, BLURRED) for h in code.max(1)]
            motionblur = [_scale(float(s), MOTION_SHARP, MOTION_BLURRED) for s in code.max(1) - code.min(1)]
            print(
                f"  {variant:<11}  {np.median(high):.3f} / {np.median(low):.3f}"
                f"                 | {np.median(spread):.3f} / {np.percentile(spread, 90):.3f}"
                f"        | {np.median(blurness):.1f} / {np.median(motionblur):.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
