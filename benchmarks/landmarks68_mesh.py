"""How far the mesh's 68 iBUG points (faceplus.attributes.ibug68) sit from dlib's 68-point predictor's, per region.

For each face (the engine's detection with dlib's landmarks, then the mesh started the way the engine starts
it) the distance of each mesh point from dlib's, in units of dlib's outer eye-corner distance (points 36-45,
300-W's normalisation), averaged per region; also how often the mesh's face-presence score is below
faceplus.landmarks.MIN_PRESENCE (where ``mesh-or-dlib68`` would fall back).

Sets: ``lfw-fit``/``lfw-held``: one photo of each of 600 random lfw-dev people (seed 0), alternate faces:
the mapping was fitted on ``lfw-fit`` (``--fit`` prints the nearest vertex per point there again);
``lfw-all``: every lfw-dev image (the fit's 300 among them: for the fallback count);
``utkface``: utkface-dev (never used for fitting); ``group``: the 9 group photos, every face found;
``fairface``: the first 300 fairface-dev crops (CC BY 4.0: a map fitted there may ship).

``--fit`` (on ``--fit-set``, ``lfw-fit`` or ``fairface``) prints the nearest vertex of each point by mean and by
median over faces, and a mirror-symmetric map from the medians, which every later set is then also scored with.
The mirror partners of mesh vertices come from ``facepp_landmarks.MIRROR`` / ``dense_landmarks.MIRROR_MORE`` where
named there, else from the mean face, which picks some wrong partners around the lips and nostrils (on fairface-dev
it left 31/35 and 49/53 asymmetric): check the printed map before adopting it.

``--speed N``: ms per face of each source's ``Landmarker.landmarks68`` on N lfw-held faces, interleaved in one run
(the 68-point predictor and its 100 MB file loaded before timing; the mesh costs one 5-point fit and one mesh).

    uv run python benchmarks/landmarks68_mesh.py [--sets lfw-held utkface group] [--limit N] [--fit]
        [--fit-set lfw-fit|fairface] [--speed N]
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceplus.attributes.dense_landmarks import MIRROR_MORE
from faceplus.attributes.facepp_landmarks import MIRROR
from faceplus.attributes.ibug68 import MESH_TO_IBUG68, REGIONS, ibug68_from_mesh
from faceplus.engine import Engine
from faceplus.landmarks import MIN_PRESENCE, Landmarker, mesh_eye_points
from faceplus.settings import EngineSettings

DATA = Path("../shared/data")
#: fairface-dev (CC BY 4.0): its first rows, the set the shipped map may be fitted on.
FAIRFACE_FACES = 300


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
    if name == "fairface":
        with (DATA / "fairface-dev" / "labels.csv").open() as f:
            return [DATA / "fairface-dev" / row["file"] for row in csv.DictReader(f)][:FAIRFACE_FACES], False
    return sorted((DATA / "group-photos" / "images").glob("*.jpg")), True


def measure(engine: Engine, files: list[Path], every_face: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dlib's 68 points, the mesh (468x2) and its presence score of each face."""
    dlib68, meshes, scores = [], [], []
    for path in files:
        rgb = engine.load(str(path)).rgb
        faces = engine.detect(rgb, embed=False)
        for face in faces if every_face else faces[:1]:
            b = face.box
            eyes = mesh_eye_points(engine.dlib.landmarks(rgb, b.corners, 5))
            found = engine.landmarker.mesh.run(rgb, (b.left, b.top, b.width, b.height), eyes)
            dlib68.append(face.landmarks68)
            meshes.append(found.points[:, :2])
            scores.append(found.score)
    return np.array(dlib68, np.float64), np.array(meshes, np.float64), np.array(scores)


def report(
    name: str, dlib68: np.ndarray, meshes: np.ndarray, scores: np.ndarray, mapping: tuple[int, ...] | None = None
) -> None:
    iod = np.linalg.norm(dlib68[:, 36] - dlib68[:, 45], axis=1)
    if mapping is None:
        mesh68 = np.stack([ibug68_from_mesh(m) for m in meshes]).astype(np.float64)
    else:
        mesh68 = meshes[:, list(mapping)]
    err = np.linalg.norm(mesh68 - dlib68, axis=2) / iod[:, None]
    cells = [f"{err[:, list(r)].mean():.3f}" for r in REGIONS.values()]
    per_face = err.mean(1)
    low = int((scores < MIN_PRESENCE).sum())
    print(
        f"| {name} | {len(err)} | " + " | ".join(cells) + f" | {per_face.mean():.3f} | {np.median(per_face):.3f} | "
        f"{(per_face > 0.1).mean():.1%} | {low} |"
    )


#: iBUG's mirror pairs (image-left point, image-right point); the other points lie on the midline.
IBUG_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
)


def mesh_mirror(meshes: np.ndarray) -> np.ndarray:
    """Each mesh vertex's mirror partner: as named in ``facepp_landmarks.MIRROR`` / ``dense_landmarks.MIRROR_MORE``,
    else the vertex nearest its mirror image in the mean face, each face first put in eye-corner coordinates
    (origin between vertices 33 and 263, x along them, their distance 1)."""
    left, right = meshes[:, 33], meshes[:, 263]
    x_axis = (right - left) / np.linalg.norm(right - left, axis=1, keepdims=True)
    y_axis = np.stack([-x_axis[:, 1], x_axis[:, 0]], 1)
    rel = (meshes - ((left + right) / 2)[:, None]) / np.linalg.norm(right - left, axis=1)[:, None, None]
    mean = np.stack([(rel * x_axis[:, None]).sum(2), (rel * y_axis[:, None]).sum(2)], 2).mean(0)
    mirrored = mean * np.array([-1.0, 1.0])
    partner = np.linalg.norm(mirrored[:, None] - mean[None], axis=2).argmin(1)
    for a, b in [*MIRROR.items(), *MIRROR_MORE.items()]:  # the partners the code already names win
        partner[a], partner[b] = b, a
    return partner


def fit(dlib68: np.ndarray, meshes: np.ndarray) -> tuple[int, ...]:
    """The mesh vertex of each iBUG point nearest by the median over faces (the faces where dlib's predictor or the
    mesh went astray do not pull it), made mirror-symmetric: where a pair's nearest vertices are not mirror partners,
    the symmetric pair with the lower summed error is kept. Prints the nearest vertices by mean and median too."""
    iod = np.linalg.norm(dlib68[:, 36] - dlib68[:, 45], axis=1)
    err = np.linalg.norm(dlib68[:, :, None] - meshes[:, None], axis=3) / iod[:, None, None]
    median = np.median(err, 0)
    for label, nearest in (("mean", err.mean(0).argmin(1)), ("median", median.argmin(1))):
        changed = {i: int(v) for i, v in enumerate(nearest) if v != MESH_TO_IBUG68[i]}
        print(f"nearest vertices ({label}): {nearest.tolist()}\n  differs from MESH_TO_IBUG68 at: {changed}")
    mirror = mesh_mirror(meshes)
    chosen = [int(v) for v in median.argmin(1)]
    for a, b in IBUG_PAIRS:
        va, vb = chosen[a], chosen[b]
        if mirror[va] != vb:
            options = [(va, int(mirror[va])), (int(mirror[vb]), vb)]
            chosen[a], chosen[b] = min(options, key=lambda o: median[a, o[0]] + median[b, o[1]])
    result = tuple(chosen)
    changed = {i: (MESH_TO_IBUG68[i], v) for i, v in enumerate(result) if v != MESH_TO_IBUG68[i]}
    print(f"symmetric map: {list(result)}\n  differs from MESH_TO_IBUG68 at (old, new): {changed}")
    return result


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
    parser.add_argument("--sets", nargs="*", default=["lfw-held", "utkface", "group"])
    parser.add_argument("--limit", type=int, help="at most this many images per set (spread evenly)")
    parser.add_argument("--fit", action="store_true", help="print the nearest vertices on --fit-set")
    parser.add_argument("--fit-set", default="lfw-fit", choices=("lfw-fit", "fairface"))
    parser.add_argument("--speed", type=int, metavar="N", help="only time both sources on N lfw-held faces")
    args = parser.parse_args()
    engine = Engine(replace(EngineSettings.from_env(), landmarks="dlib68"))
    if args.speed:
        speed(engine, args.speed)
        return
    print("mean distance from dlib's 68 points, in outer eye-corner distances")
    print("| set | faces | " + " | ".join(REGIONS) + " | all, mean | all, median | faces > 0.1 | presence < 0.5 |")
    print("|---" * (len(REGIONS) + 7) + "|")
    fitted = None
    for name in ([args.fit_set] if args.fit else []) + args.sets:
        files, every_face = images(name)
        if args.limit and len(files) > args.limit:
            files = files[:: len(files) // args.limit][: args.limit]
        dlib68, meshes, scores = measure(engine, files, every_face)
        report(name, dlib68, meshes, scores)
        if fitted is not None and fitted != MESH_TO_IBUG68:
            report(f"{name}, map fitted on {args.fit_set}", dlib68, meshes, scores, fitted)
        if name == args.fit_set and args.fit:
            fitted = fit(dlib68, meshes)


if __name__ == "__main__":
    main()
