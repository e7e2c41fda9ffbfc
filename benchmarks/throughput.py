"""Detect + embed throughput: faceplus against the face_recognition package, same images, same run.

    uv run --group bench python benchmarks/throughput.py [--images 500] [--workers 2]

face_recognition (on dlib-bin) runs its documented pipeline: HOG at upsampling 1, 5-point landmarks,
dlib's ResNet on dlib (no BLAS). faceplus runs its default engine (BlazeFace re-boxed by HOG, 68-point
alignment, the ResNet converted to ONNX with flip TTA) in one process, then as a worker pool
(``Engine.detect_many``). Also prints faceplus's per-stage latency. Reads lfw-dev from ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import time
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


def run_faceplus(paths: list[Path], workers: int) -> tuple[float, int]:
    from faceplus import Engine

    engine = Engine()
    engine.detect(paths[0])  # load models outside the timing, as a server would have
    faces = 0
    start = time.perf_counter()
    if workers <= 1:
        for path in paths:
            faces += len(engine.detect(path))
    else:
        for _, result in engine.detect_many(paths, workers=workers):
            faces += len(result) if isinstance(result, list) else 0
    return time.perf_counter() - start, faces


def stage_latency(paths: list[Path]) -> dict[str, float]:
    """Median milliseconds per image of each stage of faceplus's pipeline, one process, one thread."""
    from faceplus import Engine

    engine = Engine()
    engine.detect(paths[0])
    stages: dict[str, list[float]] = {"decode": [], "detect": [], "landmarks": [], "embed": []}
    for path in paths:
        t0 = time.perf_counter()
        decoded = engine.load(path)
        t1 = time.perf_counter()
        hits = engine.find_boxes(decoded.rgb)
        t2 = time.perf_counter()
        faces = [engine._face(decoded.rgb, _box(h), h.score, h.detector) for h in hits]
        t3 = time.perf_counter()
        engine.embed_faces(decoded.rgb, faces)
        t4 = time.perf_counter()
        for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name].append(seconds * 1000)
    return {name: float(np.median(values)) for name, values in stages.items()}


def _box(hit):
    from faceplus.results import Box

    return Box.from_corners(hit.left, hit.top, hit.right, hit.bottom)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    paths = lfw_images(args.images)
    print(f"{len(paths)} lfw-dev images, {os.cpu_count()} CPUs")

    fr_time, fr_faces = run_face_recognition(paths)
    fp_time, fp_faces = run_faceplus(paths, workers=1)
    pool_time, pool_faces = run_faceplus(paths, workers=args.workers)
    base = len(paths) / fr_time
    print(f"{'pipeline':<42} {'images/s':>9} {'faces':>6} {'ratio':>6}")
    for name, seconds, faces in (
        ("face_recognition 1.3 (dlib-bin, 1 process)", fr_time, fr_faces),
        ("faceplus, 1 process", fp_time, fp_faces),
        (f"faceplus, detect_many with {args.workers} workers", pool_time, pool_faces),
    ):
        rate = len(paths) / seconds
        print(f"{name:<42} {rate:9.1f} {faces:6d} {rate / base:6.1f}x")

    print("\nfaceplus per-stage latency, median ms per image (1 process, 1 onnxruntime thread):")
    latency = stage_latency(paths)
    for name, ms in latency.items():
        print(f"  {name:<10} {ms:7.2f}")
    print(f"  {'total':<10} {sum(latency.values()):7.2f}")


if __name__ == "__main__":
    main()
