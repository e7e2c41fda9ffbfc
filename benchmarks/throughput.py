"""Detect + embed throughput: faceplus against the face_recognition package, same images, same run.

    uv run --group bench python benchmarks/throughput.py [--images 500] [--workers 2] [--chunk 10]

face_recognition (on dlib-bin) runs its documented pipeline: HOG at upsampling 1, 5-point landmarks,
dlib's ResNet on dlib (no BLAS). faceplus runs its default engine (RetinaFace re-boxed by HOG, SFace on
RetinaFace's five points, one pass; the mesh's 68 points are fitted only when read, and nothing here reads
them) and the default before SFace (BlazeFace re-boxed by HOG, dlib's 68 points, dlib's ResNet on ONNX with flip
TTA; also with its int8 embedder), and the fast variants of the default (``FACEPLUS_EMBEDDER=sface-int8``; and
also ``FACEPLUS_RETINAFACE_REBOX=0``, RetinaFace's boxes mapped to dlib's convention without the HOG re-box), each
in one process, then each as a worker pool (``Engine.detect_many``).
The 1-process pipelines take turns every ``--chunk`` images so that all see the same load; the pool rows run
after them and are compared with the same face_recognition rate (the load average printed at each phase shows
how far that holds). Also prints both faceplus pipelines' per-stage latency,
and whether the best row reaches 10x face_recognition. Reads lfw-dev from ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def lfw_images(count: int) -> list[Path]:
    paths = sorted((DATA / "lfw-dev").glob("*/*.jpg"))
    step = max(1, len(paths) // count)
    return paths[::step][:count]


def run_face_recognition(paths: list[Path]) -> tuple[float, int]:
    import face_recognition

    faces = 0
    start = time.perf_counter()
    for path in paths:
        image = face_recognition.load_image_file(path)
        locations = face_recognition.face_locations(image, number_of_times_to_upsample=1)
        faces += len(face_recognition.face_encodings(image, locations))
    return time.perf_counter() - start, faces


def run_faceplus(engine, paths: list[Path]) -> tuple[float, int]:  # noqa: ANN001
    """One process: ``engine.detect`` image by image (models already loaded, as a server would have them)."""
    faces = 0
    start = time.perf_counter()
    for path in paths:
        faces += len(engine.detect(path))
    return time.perf_counter() - start, faces


#: The pipelines compared, by their settings: today's default, and the default before SFace (BlazeFace re-boxed by
#: HOG, dlib's 68-point landmarks, dlib's ResNet with flip TTA).
BEFORE = {"detector": "blazeface", "landmarks": "dlib68", "embedder": "resnet"}
PIPELINES = {
    "faceplus default (RetinaFace+HOG, SFace)": {},
    "faceplus before (BlazeFace+HOG, dlib-68, ResNet x2 flip)": BEFORE,
    "faceplus before, FACEPLUS_EMBEDDER=resnet-int8": {**BEFORE, "embedder": "resnet-int8"},
    "faceplus FACEPLUS_EMBEDDER=sface-int8": {"embedder": "sface-int8"},
    "faceplus fast: sface-int8, FACEPLUS_RETINAFACE_REBOX=0": {"embedder": "sface-int8", "retinaface_rebox": False},
}


def make_engine(overrides: dict[str, object]):  # noqa: ANN201
    """An engine with the default settings but for ``overrides`` (detection settings by their own names)."""
    from dataclasses import fields, replace

    from faceplus import Engine
    from faceplus.settings import DetectionSettings

    settings = Engine().settings
    detection = {f.name for f in fields(DetectionSettings)}
    engine_fields = {k: v for k, v in overrides.items() if k not in detection}
    detection_fields = {k: v for k, v in overrides.items() if k in detection}
    settings = replace(settings, detection=replace(settings.detection, **detection_fields))
    return Engine(replace(settings, **engine_fields))


def run_interleaved(paths: list[Path], chunk: int) -> list[tuple[float, int]]:
    """face_recognition and each of :data:`PIPELINES` (1 process each), taking turns every ``chunk`` images, the
    order rotating each turn.

    On a machine shared with other work the load changes within minutes; run one after the other, the tools
    would see different loads and their ratios would say more about the neighbours than about them.
    """
    import face_recognition

    engines = [make_engine(o) for o in PIPELINES.values()]
    for warm in engines:
        warm.detect(paths[0])
    face_recognition.face_encodings(face_recognition.load_image_file(paths[0]))  # the same warm start for all
    runs = [run_face_recognition, *(partial(run_faceplus, e) for e in engines)]
    totals = [[0.0, 0] for _ in runs]
    for n, i in enumerate(range(0, len(paths), chunk)):
        part = paths[i : i + chunk]
        for k in range(len(runs)):
            j = (k + n) % len(runs)
            seconds, faces = runs[j](part)
            totals[j][0] += seconds
            totals[j][1] += faces
    return [(t[0], int(t[1])) for t in totals]


def run_pool(paths: list[Path], workers: int, overrides: dict[str, object]) -> tuple[float, int]:
    """``Engine.detect_many`` with a pool of ``workers`` processes; the pool's start-up is inside the timing.

    ``landmarks=False``, as ``faceplus index`` calls it: like the 1-process rows, nothing reads the landmarks, so
    they are fitted only where the identity model reads them (else a worker fits them to send them back).
    """
    engine = make_engine(overrides)
    faces = 0
    start = time.perf_counter()
    for _, result in engine.detect_many(paths, workers=workers, landmarks=False):
        faces += len(result) if isinstance(result, list) else 0
    return time.perf_counter() - start, faces


#: The throughput goal: the best row at least this many times face_recognition's images/s, same images, same run.
GOAL = 10.0

STAGES = ("decode", "detect", "landmarks", "chips", "embed")


def reads_landmarks(engine, face) -> bool:  # noqa: ANN001
    """Whether ``engine.chips`` reads ``face``'s landmarks (fitted on first read): dlib's ResNet always (its chip is
    aligned on the 68 or 5 points), SFace only for a face without the detector's key points."""
    return not engine.settings.embedder.startswith("sface") or face.keypoints is None


def stage_latency(paths: list[Path], rounds: int = 3) -> dict[str, dict[str, float]]:
    """Per pipeline (today's default and the one before) and stage: ms per image, median over ``rounds`` passes.

    The stages are faceplus's own code (``Engine.load``, ``find_boxes``, ``_face`` and the landmark fit where the
    identity model reads landmarks: see :func:`reads_landmarks`, ``chips``, ``embed_chips``); the two engines take
    turns image by image, so their ratio holds on a loaded machine.
    """
    engines = {name: make_engine(o) for name, o in list(PIPELINES.items())[:2]}
    for engine in engines.values():
        engine.detect(paths[0])
    data = [path.read_bytes() for path in paths]
    spent = {name: {stage: [] for stage in STAGES} for name in engines}
    for _ in range(rounds):
        totals = {name: dict.fromkeys(STAGES, 0.0) for name in engines}
        for blob in data:
            for name, engine in engines.items():
                t0 = time.perf_counter()
                decoded = engine.load(blob)
                t1 = time.perf_counter()
                hits = engine.find_boxes(decoded.rgb)
                t2 = time.perf_counter()
                faces = [engine._face(decoded.rgb, hit) for hit in hits]
                for face in faces:
                    if reads_landmarks(engine, face):
                        face.fit_landmarks()  # timed here, not in "chips", where reading them would fit them
                t3 = time.perf_counter()
                chips = engine.chips(decoded.rgb, faces)
                t4 = time.perf_counter()
                engine.embed_chips(chips)
                t5 = time.perf_counter()
                for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                    totals[name][stage] += seconds
        for name in engines:
            for stage in STAGES:
                spent[name][stage].append(totals[name][stage] * 1000 / len(data))
    return {name: {stage: float(np.median(v)) for stage, v in stages.items()} for name, stages in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--chunk", type=int, default=10, help="images per turn when the tools alternate")
    parser.add_argument("--stages-only", action="store_true", help="only the per-stage table")
    args = parser.parse_args()
    paths = lfw_images(args.images)
    print(f"{len(paths)} lfw-dev images, {os.cpu_count()} CPUs")
    if args.stages_only:
        print_stages(paths)
        return

    loads = [os.getloadavg()[0]]
    (fr_time, fr_faces), *one_process = run_interleaved(paths, args.chunk)
    loads.append(os.getloadavg()[0])
    pools = [run_pool(paths, args.workers, o) for o in PIPELINES.values()]
    loads.append(os.getloadavg()[0])
    print(
        "load average (1 min): {:.2f} at start, {:.2f} after the 1-process turns, {:.2f} after the pools".format(*loads)
    )
    base = len(paths) / fr_time
    print(f"{'pipeline':<72} {'images/s':>9} {'faces':>6} {'ratio':>6}")
    ratios = {}
    rows = [("face_recognition 1.3 (dlib-bin, 1 process)", fr_time, fr_faces)]
    rows += [(f"{name}, 1 process", *r) for name, r in zip(PIPELINES, one_process, strict=True)]
    rows += [(f"{name}, {args.workers} workers", *r) for name, r in zip(PIPELINES, pools, strict=True)]
    for name, seconds, faces in rows:
        rate = len(paths) / seconds
        ratios[name] = rate / base
        print(f"{name:<72} {rate:9.1f} {faces:6d} {rate / base:6.1f}x")
    default, before = (f"{name}, 1 process" for name in list(PIPELINES)[:2])
    print(f"default against before, 1 process: {ratios[default] / ratios[before]:.2f}x the images/s")
    best = max(ratios, key=ratios.__getitem__)
    verdict = "met" if ratios[best] >= GOAL else "not met"
    print(f"best row: {best}, {ratios[best]:.1f}x face_recognition (1 process); goal >= {GOAL:g}x: {verdict}")

    print_stages(paths)


def print_stages(paths: list[Path]) -> None:
    print("\nfaceplus per stage, ms per image (1 process, 1 onnxruntime thread, the two engines taking turns):")
    latency = stage_latency(paths)
    names = list(latency)
    print(f"  {'stage':<10} " + " ".join(f"{n[:24]:>25}" for n in names) + f" {'ratio':>6}")
    for stage in STAGES:
        ms = [latency[n][stage] for n in names]
        print(f"  {stage:<10} " + " ".join(f"{v:25.2f}" for v in ms) + f" {ms[0] / max(ms[1], 1e-9):6.2f}")
    totals = [sum(latency[n].values()) for n in names]
    print(f"  {'total':<10} " + " ".join(f"{v:25.2f}" for v in totals) + f" {totals[0] / totals[1]:6.2f}")


if __name__ == "__main__":
    main()
