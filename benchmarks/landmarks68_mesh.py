"""How far the mesh's 68 iBUG points (faceplus.attributes.ibug68) sit from dlib's 68-point predictor's, per region.

For each face (the engine's detection with dlib's landmarks, then the mesh started the way the engine starts
it) the distance of each mesh point from dlib's, in units of dlib's outer eye-corner distance (points 36-45,
300-W's normalisation), averaged per region; also how often the mesh's face-presence score is below
faceplus.landmarks.MIN_PRESENCE (where ``mesh-or-dlib68`` would fall back).

Sets: ``lfw-fit``/``lfw-held``: one photo of each of 600 random lfw-dev people (seed 0), alternate faces:
the mapping was fitted on ``lfw-fit`` (``--fit`` prints the nearest vertex per point there again);
``lfw-all``: every lfw-dev image (the fit's 300 among them: for the fallback count);
``utkface``: utkface-dev (never used for fitting); ``group``: the 9 group photos, every face found.

``--speed N``: ms per face of each source's ``Landmarker.landmarks68`` on N lfw-held faces, interleaved in one run
(the 68-point predictor and its 100 MB file loaded before timing; the mesh costs one 5-point fit and one mesh).

    uv run python benchmarks/landmarks68_mesh.py [--sets lfw-held utkface group] [--limit N] [--fit] [--speed N]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceplus.attributes.ibug68 import MESH_TO_IBUG68, REGIONS, ibug68_from_mesh
from faceplus.engine import Engine
from faceplus.landmarks import MIN_PRESENCE, Landmarker, mesh_eye_points
from faceplus.settings import EngineSettings

DATA = Path("../shared/data")


def lfw_sample(half: int) -> list[Path]:
    people = sorted(p for p in (DATA / "lfw-dev").iterdir() if p.is_dir())
    files = [sorted(p.glob("*.jpg"))[0] for p in people]
    random.Random(0).shuffle(files)
    return files[:600][half::2]


def images(name: str) -> tuple[list[Path], bool]:
    """(image files, every face or only the largest)."""
    if name == "lfw-fit":
        return lfw_sample(0), False
    if name == "lfw-held":
        return lfw_sample(1), False
    if name == "lfw-all":
        return sorted((DATA / "lfw-dev").glob("*/*.jpg")), False
    if name == "utkface":
        return sorted((DATA / "utkface-dev" / "images").glob("*.jpg")), False
    return sorted((DATA / "group-photos" / "images").glob("*.jpg")), True


def measure(engine: Engine, files: list[Path], every_face: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dlib's 68 points, the mesh (468x2) and its presence score of each face."""
    dlib68, meshes, scores = [], [], []
    for path in files:
        decoded = engine.load(str(path))
        faces = engine.detect(decoded, embed=False)
        for face in faces if every_face else faces[:1]:
            b = face.box
            eyes = mesh_eye_points(engine.dlib.landmarks(decoded.rgb, b.corners, 5))
            found = engine.landmarker.mesh.run(decoded.rgb, (b.left, b.top, b.width, b.height), eyes)
            dlib68.append(face.landmarks68)
            meshes.append(found.points[:, :2])
            scores.append(found.score)
    return np.array(dlib68, np.float64), np.array(meshes, np.float64), np.array(scores)


def report(name: str, dlib68: np.ndarray, meshes: np.ndarray, scores: np.ndarray) -> None:
    iod = np.linalg.norm(dlib68[:, 36] - dlib68[:, 45], axis=1)
    mesh68 = np.stack([ibug68_from_mesh(m) for m in meshes]).astype(np.float64)
    err = np.linalg.norm(mesh68 - dlib68, axis=2) / iod[:, None]
    cells = [f"{err[:, list(r)].mean():.3f}" for r in REGIONS.values()]
    per_face = err.mean(1)
    low = int((scores < MIN_PRESENCE).sum())
    print(
        f"| {name} | {len(err)} | " + " | ".join(cells) + f" | {per_face.mean():.3f} | {np.median(per_face):.3f} | "
        f"{(per_face > 0.1).mean():.1%} | {low} |"
    )


def fit(dlib68: np.ndarray, meshes: np.ndarray) -> None:
    """The nearest mesh vertex of each iBUG point on average (before making the map symmetric)."""
    iod = np.linalg.norm(dlib68[:, 36] - dlib68[:, 45], axis=1)
    err = np.linalg.norm(dlib68[:, :, None] - meshes[:, None], axis=3) / iod[:, None, None]
    nearest = err.mean(0).argmin(1)
    print("nearest vertices:", nearest.tolist())
    print("differs from MESH_TO_IBUG68 at:", [i for i, v in enumerate(nearest) if v != MESH_TO_IBUG68[i]])


def speed(engine: Engine, count: int) -> None:
    """ms per face of each landmark source, alternating faces so both see the same machine load."""
    landmarkers = {s: Landmarker(s, engine.dlib, lambda: engine.landmarker.mesh) for s in ("dlib68", "mesh")}
    faces = []
    for path in lfw_sample(1)[:count]:
        decoded = engine.load(str(path))
        faces += [(decoded.rgb, f.box) for f in engine.detect(decoded, embed=False)[:1]]
    spent = dict.fromkeys(landmarkers, 0.0)
    for _ in range(3):
        for rgb, box in faces:
            for source, landmarker in landmarkers.items():
                start = time.perf_counter()
                landmarker.landmarks68(rgb, box)
                spent[source] += time.perf_counter() - start
    per_face = {s: 1000 * t / (3 * len(faces)) for s, t in spent.items()}
    ratio = per_face["mesh"] / per_face["dlib68"]
    print(", ".join(f"{s} {ms:.2f} ms/face" for s, ms in per_face.items()), f"(mesh/dlib68 {ratio:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["lfw-held", "utkface", "group"])
    parser.add_argument("--limit", type=int, help="at most this many images per set (spread evenly)")
    parser.add_argument("--fit", action="store_true", help="print the nearest vertices on lfw-fit")
    parser.add_argument("--speed", type=int, metavar="N", help="only time both sources on N lfw-held faces")
    args = parser.parse_args()
    engine = Engine(replace(EngineSettings.from_env(), landmarks="dlib68"))
    if args.speed:
        speed(engine, args.speed)
        return
    print("mean distance from dlib's 68 points, in outer eye-corner distances")
    print("| set | faces | " + " | ".join(REGIONS) + " | all, mean | all, median | faces > 0.1 | presence < 0.5 |")
    print("|---" * (len(REGIONS) + 7) + "|")
    for name in (["lfw-fit"] if args.fit else []) + args.sets:
        files, every_face = images(name)
        if args.limit and len(files) > args.limit:
            files = files[:: len(files) // args.limit][: args.limit]
        dlib68, meshes, scores = measure(engine, files, every_face)
        report(name, dlib68, meshes, scores)
        if name == "lfw-fit" and args.fit:
            fit(dlib68, meshes)


if __name__ == "__main__":
    main()
