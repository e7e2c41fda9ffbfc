"""Age on utkface-dev from each landmark source, paired per image (the engine's age views: 5 points, 2 scales, flip).

Each image is detected once (the face nearest the centre, as ``faceplus eval attributes`` picks it); the age
model then reads chips aligned on the 5 points taken from dlib's 68 (``dlib68``), from the mesh's 68 (``mesh``),
and on dlib's own 5-point predictor (``dlib5``, unrestricted). Reported: MAE per source and on the two halves
(alternate images), and the paired difference to ``dlib68`` with a bootstrap 95% interval over images.

    uv run python benchmarks/landmarks68_age.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceplus.engine import Engine
from faceplus.landmarks import Landmarker
from faceplus.settings import EngineSettings

UTK = Path("../shared/data/utkface-dev")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    rows = list(csv.DictReader((UTK / "labels.csv").open()))[: args.limit]
    engine = Engine(replace(EngineSettings.from_env(), landmarks="dlib68"))
    model = engine.analyzer.age_gender_model
    mesh = Landmarker("mesh", engine.dlib, lambda: engine.analyzer.mesh_model)
    truth, ages = [], {"dlib68": [], "mesh": [], "dlib5": []}
    for row in rows:
        rgb = engine.load(str(UTK / row["file"])).rgb
        hits = engine.find_boxes(rgb)
        if not hits:
            continue
        cy, cx = rgb.shape[0] / 2, rgb.shape[1] / 2
        hit = min(hits, key=lambda h: (h.box().center[0] - cx) ** 2 + (h.box().center[1] - cy) ** 2)
        face = engine._face(rgb, hit)
        mesh68 = mesh.landmarks68(rgb, hit.box()).points
        truth.append(float(row["age"]))
        ages["dlib68"].append(model.estimate(rgb, face.landmarks5, face.landmarks68).age)
        ages["mesh"].append(model.estimate(rgb, face.landmarks5, mesh68).age)
        ages["dlib5"].append(model.estimate(rgb, face.landmarks5, None).age)
    y = np.array(truth)
    err = {k: np.abs(np.array(v) - y) for k, v in ages.items()}
    rng = np.random.default_rng(0)
    boot = rng.integers(0, len(y), (2000, len(y)))
    print(f"{len(y)} of {len(rows)} utkface-dev images with a face")
    print("| age views from | MAE | half A | half B | paired vs dlib68 (95% bootstrap) |")
    print("|---|---|---|---|---|")
    for k, e in err.items():
        diff = e - err["dlib68"]
        lo, hi = np.percentile(diff[boot].mean(1), [2.5, 97.5])
        halves = f"{e[::2].mean():.2f} | {e[1::2].mean():.2f}"
        print(f"| {k} | {e.mean():.2f} | {halves} | {diff.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] |")


if __name__ == "__main__":
    main()
