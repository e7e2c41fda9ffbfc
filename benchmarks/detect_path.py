"""The modules each engine job enters, in order: how often it steps into the engine and climbs back up.

    uv run python benchmarks/detect_path.py [--image group-photos/images/2008_001322.jpg]

Runs each job once (after a warm-up) on a real group photo (from ../shared/data), tracing every call made from a
``faceplus.jobs`` module into another faceplus module:

- detect (:func:`faceplus.jobs.detect.detect_job`): what ``POST /facepp/v3/detect`` asks by default plus landmarks
  and two attributes (the server's minimum face, ``attribute_faces`` described, crops kept);
- analyze (face/analyze of the largest face, 83 landmarks, gender, age, emotion and smile): from its kept crop
  (:func:`~faceplus.jobs.analyze.analyze_crop_job`) and from the kept image and its box
  (:func:`~faceplus.jobs.analyze.analyze_job`);
- dense (thousandlandmark, every part): of the image's largest face (:func:`~faceplus.jobs.dense.dense_image_job`)
  and of the largest face's kept crop (:func:`~faceplus.jobs.dense.dense_crop_job`).

For each it prints the path as the job sees it, one stay per module, and three counts:

- stays: entries in that path (the job's own module counts each time control comes back to it);
- engine entries: calls from the job layer into a module outside ``faceplus.jobs`` (the engine side);
- climbs back: returns from the engine side into the job layer that are followed by another engine entry (the
  job had to step back up to decide the next step). Data constructors (dataclass ``__init__``) are not hops.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from faceplus import Engine
from faceplus.attributes.dense_landmarks import PARTS
from faceplus.jobs.analyze import AnalyzeCropRequest, AnalyzeRequest, analyze_crop_job, analyze_job
from faceplus.jobs.dense import DenseCropRequest, DenseImageRequest, dense_crop_job, dense_image_job
from faceplus.jobs.detect import DetectRequest, detect_job
from faceplus.jobs.min_face import facepp_min_face
from faceplus.settings import ServerSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _module(frame: FrameType | None) -> str:
    return "" if frame is None else str(frame.f_globals.get("__name__", ""))


def trace_path(run: Any) -> list[str]:
    """The modules the job layer enters while ``run()`` runs, with the job's module again after each return."""
    path: list[str] = []
    entered: set[int] = set()

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event not in ("call", "return") or frame.f_code.co_filename.startswith("<"):
            return
        callee, caller = _module(frame), _module(frame.f_back)
        if event == "call" and not path and callee.startswith("faceplus.jobs"):
            path.append(callee)  # the job itself
        elif event == "call" and caller.startswith("faceplus.jobs") and callee.startswith("faceplus."):
            if callee != caller:
                path.append(callee)
                entered.add(id(frame))
        elif event == "return" and id(frame) in entered:
            entered.discard(id(frame))
            path.append(caller)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return path


def counts(path: list[str]) -> tuple[int, int, int]:
    """(stays, engine entries, climbs back) of a traced path."""
    engine_side = [not module.startswith("faceplus.jobs") for module in path]
    entries = sum(1 for i, side in enumerate(engine_side) if side and (i == 0 or not engine_side[i - 1]))
    last_entry = max((i for i, side in enumerate(engine_side) if side), default=-1)
    climbs = sum(1 for i in range(1, len(path)) if engine_side[i - 1] and not engine_side[i] and i < last_entry)
    return len(path), entries, climbs


def report(name: str, path: list[str]) -> None:
    """One job's path and counts."""
    print(f"{name}: " + " -> ".join(module.removeprefix("faceplus.") for module in path))
    stays, entries, climbs = counts(path)
    print(f"{name}: stays {stays}, engine entries {entries}, climbs back {climbs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="group-photos/images/2008_001322.jpg", help="relative to shared/data")
    args = parser.parse_args()
    image = DATA / args.image
    if not image.is_file():
        sys.exit(f"{image} not found (the real data sets live in ../shared/data)")
    settings = ServerSettings()
    data = image.read_bytes()
    request = DetectRequest(
        data,
        landmark=1,
        attributes=("gender", "age"),
        describe_first=settings.attribute_faces,
        keep_crops=True,
        min_face=facepp_min_face(settings),
    )
    engine = Engine()
    found = detect_job(engine, request)  # warm-up: models load outside the traced run
    print(f"{args.image}: {len(found)} faces kept, {found.left_out} left out (min face {found.min_face} px)")
    report("detect", trace_path(lambda: detect_job(engine, request)))
    crop = found[0].crop
    assert crop is not None, "detect kept no crop of the largest face"
    asked = (1, ("gender", "age", "emotion", "smiling"))
    analyze_crop = AnalyzeCropRequest(crop.data, crop.meta, *asked)
    analyze_image = AnalyzeRequest(data, found[0].box, *asked)
    dense_image = DenseImageRequest(data, "image_file", PARTS, facepp_min_face(settings))
    dense_crop = DenseCropRequest(crop.data, crop.meta, PARTS)
    jobs: dict[str, Any] = {  # the requests are built before the trace: only the job's own path is traced
        "analyze (crop)": lambda: analyze_crop_job(engine, analyze_crop),
        "analyze (image)": lambda: analyze_job(engine, analyze_image),
        "dense (image)": lambda: dense_image_job(engine, dense_image),
        "dense (crop)": lambda: dense_crop_job(engine, dense_crop),
    }
    for name, run in jobs.items():
        run()  # warm-up: the attribute and mesh models load outside the traced run
        report(name, trace_path(run))


if __name__ == "__main__":
    main()
