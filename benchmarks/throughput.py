"""Detect + embed throughput: faceplus against the face_recognition package, same images, same run.

    uv run --group bench python benchmarks/throughput.py [--images 500] [--workers 2] [--chunk 10]

face_recognition (on dlib-bin) runs its documented pipeline: HOG at upsampling 1, 5-point landmarks,
dlib's ResNet on dlib (no BLAS). faceplus runs its default engine (BlazeFace re-boxed by HOG, 68-point
alignment, the ResNet converted to ONNX with flip TTA) in one process, the same with the opt-in int8
embedder (``FACEPLUS_EMBEDDER=resnet-int8``), then as a worker pool (``Engine.detect_many``). The three
1-process pipelines take turns every ``--chunk`` images so that all see the same load; the pool row runs
after them and is compared with the same face_recognition rate (the load
average printed at each phase shows how far that holds). Also prints faceplus's per-stage latency against
each stage's floor, and whether the best row reaches issue 15's 10x. Reads lfw-dev from ../shared/data.
"""

from __future__ import annotations

import argparse
import io
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


def run_interleaved(paths: list[Path], chunk: int) -> list[tuple[float, int]]:
    """face_recognition, faceplus and faceplus with the int8 embedder (1 process each), taking turns every
    ``chunk`` images, the order rotating each turn.

    On a machine shared with other work the load changes within minutes; run one after the other, the tools
    would see different loads and their ratios would say more about the neighbours than about them.
    """
    from dataclasses import replace

    import face_recognition

    from faceplus import Engine

    engine = Engine()
    int8 = Engine(replace(engine.settings, embedder="resnet-int8"))
    for warm in (engine, int8):
        warm.detect(paths[0])
    face_recognition.face_encodings(face_recognition.load_image_file(paths[0]))  # the same warm start for all
    totals = [[0.0, 0], [0.0, 0], [0.0, 0]]
    runs = [run_face_recognition, partial(run_faceplus, engine), partial(run_faceplus, int8)]
    for n, i in enumerate(range(0, len(paths), chunk)):
        part = paths[i : i + chunk]
        for k in range(len(runs)):
            j = (k + n) % len(runs)
            seconds, faces = runs[j](part)
            totals[j][0] += seconds
            totals[j][1] += faces
    return [(t[0], int(t[1])) for t in totals]


def run_pool(paths: list[Path], workers: int, embedder: str = "resnet") -> tuple[float, int]:
    """``Engine.detect_many`` with a pool of ``workers`` processes; the pool's start-up is inside the timing."""
    from dataclasses import replace

    from faceplus import Engine

    engine = Engine()
    engine = Engine(replace(engine.settings, embedder=embedder))
    faces = 0
    start = time.perf_counter()
    for _, result in engine.detect_many(paths, workers=workers):
        faces += len(result) if isinstance(result, list) else 0
    return time.perf_counter() - start, faces


#: Issue 15's goal: the best row at least this many times face_recognition's images/s, same images, same run.
GOAL = 10.0

STAGES = ("decode", "detect", "landmarks", "chips", "embed")


class _Recorder:
    """Wraps one engine's model calls so one pipeline pass records every raw model input, per stage.

    Replaying those inputs through the bare model calls (onnxruntime ``run``, dlib's HOG, predictor and chip
    functions, libjpeg through PIL) gives each stage's floor: what its models cost with no code around them.
    """

    def __init__(self, engine) -> None:  # noqa: ANN001
        import dlib

        import faceplus.engine as engine_module
        from faceplus.chips import landmark_shape
        from faceplus.models.dlib_models import _rect

        self.calls: dict[str, list] = {name: [] for name in STAGES}
        self.on = True
        models, calls = engine.dlib, self.calls
        hog_run, p5, p68 = models.hog.run, models.predictor5, models.predictor68
        detect_hog, landmarks, chips = models.detect_hog, models.landmarks, engine_module.face_chips

        def rec_hog(rgb, upsample, threshold):  # noqa: ANN001, ANN202
            if self.on:
                calls["detect"].append(partial(hog_run, rgb, upsample, threshold))
            return detect_hog(rgb, upsample, threshold)

        def rec_landmarks(rgb, box, points=5):  # noqa: ANN001, ANN202
            if self.on:
                calls["landmarks"].append(partial(p5 if points == 5 else p68, rgb, _rect(box)))
            return landmarks(rgb, box, points)

        def rec_chips(rgb, points, spec):  # noqa: ANN001, ANN202
            if self.on and points:
                shapes = dlib.full_object_detections()
                shapes.extend(landmark_shape(p) for p in points)
                calls["chips"].append(partial(dlib.get_face_chips, rgb, shapes, size=spec.size, padding=spec.padding))
            return chips(rgb, points, spec)

        models.detect_hog, models.landmarks, engine_module.face_chips = rec_hog, rec_landmarks, rec_chips
        for detector in (engine.detectors._blazeface, engine.detectors._blazeface_short):
            detector.session = _SessionRecorder(detector.session, calls["detect"], self)
        engine.embedder._session = _SessionRecorder(engine.embedder._session, calls["embed"], self)


class _SessionRecorder:
    """An onnxruntime session that records each ``run`` (inputs already made) before running it."""

    def __init__(self, session, calls: list, recorder: _Recorder) -> None:  # noqa: ANN001
        self._session, self._calls, self._recorder = session, calls, recorder

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._session, name)

    def run(self, outputs, feeds):  # noqa: ANN001, ANN201
        if self._recorder.on:
            feeds = {k: np.array(v, copy=True) for k, v in feeds.items()}
            self._calls.append(partial(self._session.run, outputs, feeds))
        return self._session.run(outputs, feeds)


def stage_latency(paths: list[Path], rounds: int = 3) -> dict[str, tuple[float, float]]:
    """Per stage: (pipeline ms per image, floor ms per image), medians over ``rounds`` interleaved passes.

    The pipeline is faceplus's own code, stage by stage (``Engine.load``, ``find_boxes``, ``_face``,
    ``chips``, ``embed_chips``); the floor replays the raw model calls that pass made, on the inputs it made
    for them, with nothing around them. Both run in this process, one after the other, so their ratio holds
    on a loaded machine.
    """
    from PIL import Image

    from faceplus import Engine

    engine = Engine()
    engine.detect(paths[0])
    data = [path.read_bytes() for path in paths]
    recorder = _Recorder(engine)
    pipeline: dict[str, list[float]] = {name: [] for name in STAGES}
    floor: dict[str, list[float]] = {name: [] for name in STAGES}

    def decode_floor(blob: bytes) -> None:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()

    for r in range(rounds):
        spent = dict.fromkeys(STAGES, 0.0)
        for blob in data:
            if r == 0:
                recorder.calls["decode"].append(partial(decode_floor, blob))
            t0 = time.perf_counter()
            decoded = engine.load(blob)
            t1 = time.perf_counter()
            hits = engine.find_boxes(decoded.rgb)
            t2 = time.perf_counter()
            faces = [engine._face(decoded.rgb, hit) for hit in hits]
            t3 = time.perf_counter()
            chips = engine.chips(decoded.rgb, faces)
            t4 = time.perf_counter()
            engine.embed_chips(chips)
            t5 = time.perf_counter()
            for name, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                spent[name] += seconds
        recorder.on = False
        for name in STAGES:
            pipeline[name].append(spent[name] * 1000 / len(data))
            t0 = time.perf_counter()
            for call in recorder.calls[name]:
                call()
            floor[name].append((time.perf_counter() - t0) * 1000 / len(data))
    return {name: (float(np.median(pipeline[name])), float(np.median(floor[name]))) for name in STAGES}


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
    (fr_time, fr_faces), (fp_time, fp_faces), (q_time, q_faces) = run_interleaved(paths, args.chunk)
    loads.append(os.getloadavg()[0])
    pool_time, pool_faces = run_pool(paths, args.workers)
    q_pool_time, q_pool_faces = run_pool(paths, args.workers, "resnet-int8")
    loads.append(os.getloadavg()[0])
    print(
        "load average (1 min): {:.2f} at start, {:.2f} after the 1-process turns, {:.2f} after the pools".format(*loads)
    )
    base = len(paths) / fr_time
    print(f"{'pipeline':<52} {'images/s':>9} {'faces':>6} {'ratio':>6}")
    ratios = {}
    for name, seconds, faces in (
        ("face_recognition 1.3 (dlib-bin, 1 process)", fr_time, fr_faces),
        ("faceplus, 1 process", fp_time, fp_faces),
        ("faceplus, FACEPLUS_EMBEDDER=resnet-int8, 1 process", q_time, q_faces),
        (f"faceplus, detect_many with {args.workers} workers", pool_time, pool_faces),
        (f"faceplus, resnet-int8, detect_many with {args.workers} workers", q_pool_time, q_pool_faces),
    ):
        rate = len(paths) / seconds
        ratios[name] = rate / base
        print(f"{name:<52} {rate:9.1f} {faces:6d} {rate / base:6.1f}x")
    best = max(ratios, key=ratios.__getitem__)
    verdict = "met" if ratios[best] >= GOAL else "not met"
    print(f"best row: {best}, {ratios[best]:.1f}x face_recognition in 1 process; goal >= {GOAL:g}x: {verdict}")

    print_stages(paths)


def print_stages(paths: list[Path]) -> None:
    print("\nfaceplus per stage, ms per image (1 process, 1 onnxruntime thread); floor = the stage's raw model calls")
    print("alone on the inputs the pipeline made for them (onnxruntime run, dlib HOG/predictor/chip, PIL decode):")
    latency = stage_latency(paths)
    print(f"  {'stage':<10} {'pipeline':>9} {'floor':>7} {'overhead':>9}")
    for name, (ms, floor) in latency.items():
        print(f"  {name:<10} {ms:9.2f} {floor:7.2f} {(ms - floor) / max(ms, 1e-9):8.0%}")
    total, total_floor = (sum(v[i] for v in latency.values()) for i in (0, 1))
    print(f"  {'total':<10} {total:9.2f} {total_floor:7.2f} {(total - total_floor) / total:8.0%}")


if __name__ == "__main__":
    main()
