"""SFace as the engine runs it, against its variants, on lfw-dev: alignment fit, flip TTA, graph, int8; one run.

    OMP_NUM_THREADS=1 uv run python benchmarks/sface_variants.py [--cache /tmp/faceplus-sface/keypoints.npz]
        [--workers 2] [--timing-faces 64] [--old-int8 --calib-images 300]
    OMP_NUM_THREADS=1 uv run python benchmarks/sface_variants.py --write-ranges src/faceplus/data/sface_int8_ranges.json

Every lfw-dev image's centre face is found once by the engine's own path (detection chain, dlib's 68 landmarks,
the 5 ArcFace key points derived from them: ``faceplus.embedders.face_keypoints``) and the key points cached.
Rows (each embeds every image again from those key points):

- ``lstsq`` (the engine: the similarity fitted by plain least squares, Umeyama, as insightface's ``norm_crop``;
  ``cv2.warpAffine``; fp32 graph; one pass);
- ``lmeds``: the similarity fitted by ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)`` instead;
- ``lstsq+flip``: the mean of the chip's and its mirror's descriptors, then unit length;
- ``shipped``: the as-shipped int8-block graph (only its unused inputs removed), one pass;
- ``sface-int8``: ``FACEPLUS_EMBEDDER=sface-int8`` as the engine runs it (``faceplus.convert.sface_int8``:
  normalisations folded, channels equalized, static int8 QDQ with the shipped fairface-dev ranges); also its
  false-accept rate and TAR at the fp32 model's shipped thresholds (``calibration-sface.json``), which it uses;
- ``int8-static`` (``--old-int8``, the earlier recipe, not offered): onnxruntime's static QDQ quantization of the
  fp32 graph as it is (normalisations not folded; int8 weights per channel, uint8 activations, MinMax ranges on
  ``--calib-images`` utkface-dev faces, never lfw-dev; the final Gemm in float).

``--write-ranges PATH`` instead measures the int8 model's activation ranges (``RANGES_FACES`` fairface-dev faces,
the first in labels.csv order the engine finds a face in, aligned as the engine aligns them; 99.99th percentile of
|x| per tensor) and writes them as the JSON file ``faceplus.data`` ships.

Per row: lfw-dev 10-fold accuracy on pairs-dev.txt (``faceplus.evaluation.lfw``, as ``faceplus eval lfw``), TAR at
FAR 1e-3 and 1e-4 over all same-person / all cross-person pairs of lfw-dev (16,352 / 8.1 M pairs; a face missing
on either side counts as a rejection), and the largest / median L2 distance of each unit embedding to the
engine's (``lmeds``). Timing: ms per face with one face per call, 1 onnxruntime thread, median of 5 rounds
of ``--timing-faces`` chips, rows taking turns (so machine load falls alike); the ratio to the engine's row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
#: fairface-dev faces the int8 ranges are measured on, and the percentile of |x| kept per tensor (on 198 other
#: fairface-dev faces, with the first spelling of PRelu tried, 99.99 kept the embeddings closest to fp32's: median
#: L2 0.17, against 0.28 at 99.9 and 99.999 and 0.39 for the plain min/max).
RANGES_FACES, RANGES_PERCENTILE = 200, 99.99
_engine = None


def _init() -> None:
    global _engine
    from faceplus.engine import Engine
    from faceplus.settings import DetectionSettings, EngineSettings, ImageLimits

    _engine = Engine(
        EngineSettings(
            limits=ImageLimits(min_side=1, max_side=100_000, max_bytes=1 << 31),
            detection=DetectionSettings(min_face=20),
        )
    )


def _keypoints(path: str) -> np.ndarray:
    from faceplus.embedders import face_keypoints
    from faceplus.engine import NoFaceFound

    assert _engine is not None
    try:
        face = _engine.main_face(_engine.load(path), prefer="center", embed=False)
    except NoFaceFound:
        return np.full((5, 2), np.nan, np.float32)
    return face_keypoints(face)


def keypoints(images: list[str], cache: Path, workers: int) -> np.ndarray:
    if cache.is_file():
        with np.load(cache) as data:
            if list(data["paths"]) == images:
                return data["keypoints"]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init) as pool:
        found = np.stack(list(pool.map(_keypoints, [str(DATA / "lfw-dev" / p) for p in images], chunksize=16)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=np.array(images), keypoints=found)
    return found


def chip(rgb: np.ndarray, points: np.ndarray, fit: str) -> np.ndarray:
    """The engine's chip (``lstsq``: ``faceplus.chips.arcface_chips``) or cv2's LMEDS fit warped the same way."""
    from faceplus.chips import ARCFACE_TEMPLATE, arcface_chips

    if fit == "lstsq":
        return arcface_chips(rgb, [points])[0]
    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), ARCFACE_TEMPLATE, method=cv2.LMEDS)
    return cv2.warpAffine(np.ascontiguousarray(rgb), matrix, (112, 112), borderValue=0.0)


def load_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def all_chips(root: Path, images: list[str], points: np.ndarray, fit: str) -> np.ndarray:
    out = np.zeros((len(images), 112, 112, 3), np.uint8)
    for i, rel in enumerate(images):
        if np.isfinite(points[i]).all():
            out[i] = chip(load_rgb(root / rel), points[i], fit)
    return out


def run(session, chips: np.ndarray, batch: int = 32) -> np.ndarray:  # noqa: ANN001
    outs = []
    for i in range(0, len(chips), batch):
        x = np.ascontiguousarray(chips[i : i + batch].transpose(0, 3, 1, 2), dtype=np.float32)
        outs.append(session.run(None, {"data": x})[0])
    return np.concatenate(outs)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def all_pairs_tar(vectors: np.ndarray, labels: np.ndarray, fars: tuple[float, ...]) -> dict[float, float]:
    """TAR at each FAR over all same/cross-identity pairs; missing faces: genuine pairs rejected."""
    from faceplus.evaluation.calibrate import pair_distances

    found = np.isfinite(vectors).all(1)
    genuine, impostor = pair_distances(vectors[found], labels[found])
    total_genuine = sum(c * (c - 1) // 2 for c in np.unique(labels, return_counts=True)[1])
    impostor = np.sort(impostor)
    out = {}
    for far in fars:
        k = int(np.floor(far * len(impostor)))
        threshold = impostor[k]  # accept d < threshold: at most k impostor pairs
        out[far] = float(np.sum(genuine < threshold) / total_genuine)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "faceplus-sface/keypoints.npz")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timing-faces", type=int, default=64)
    parser.add_argument("--calib-images", type=int, default=300)
    parser.add_argument("--old-int8", action="store_true", help="add the earlier int8-static row (utkface-dev)")
    parser.add_argument("--write-ranges", type=Path, help="write the sface-int8 ranges JSON here and stop")
    args = parser.parse_args()
    if args.write_ranges:
        return write_ranges(args.write_ranges)

    import onnx

    from faceplus.calibration import Calibration
    from faceplus.convert.sface import strip_unused_inputs
    from faceplus.evaluation.calibrate import image_list
    from faceplus.evaluation.lfw import evaluate, read_pairs
    from faceplus.models import runtime, sface

    root = DATA / "lfw-dev"
    images = image_list(root)
    labels = np.array([p.split("/")[0] for p in images])
    start = time.perf_counter()
    points = keypoints(images, args.cache, args.workers)
    found = np.isfinite(points).all((1, 2))
    print(f"{len(images)} lfw-dev images, centre face found in {found.sum()} ({time.perf_counter() - start:.0f} s)")

    fp32 = runtime.session(sface.model_path(), 1)
    shipped = runtime.session(strip_unused_inputs(onnx.load(str(sface.weights_path()))).SerializeToString(), 1)
    int8_path = sface.model_path(embedder="sface-int8")
    sessions = {"fp32": fp32, "shipped": shipped, "sface-int8": runtime.session(int8_path, 1)}
    int8 = int8_model(args.calib_images) if args.old_int8 else None
    if int8 is not None:
        sessions["int8-static"] = runtime.session(int8, 1)

    pairs = read_pairs(root / "pairs-dev.txt")
    index = {p: i for i, p in enumerate(images)}
    calibration = Calibration(midpoint=1.0, scale=0.1, threshold_distances={})  # monotone: ranks pairs only
    print(f"{'row':<16} {'10-fold':>15} {'TAR@1e-3':>9} {'TAR@1e-4':>9} {'L2 to engine max/median':>24}", flush=True)
    reference: np.ndarray | None = None

    def report(name: str, vectors: np.ndarray) -> None:
        nonlocal reference
        vectors = vectors.copy()
        vectors[~found] = np.nan
        reference = vectors if reference is None else reference
        result = evaluate(pairs, {p: vectors[index[p]] for p in images}, calibration)
        tar = all_pairs_tar(vectors, labels, (1e-3, 1e-4))
        moved = np.linalg.norm(vectors[found] - reference[found], axis=1)
        print(
            f"{name:<16} {result.mean * 100:6.2f}% +- {result.std * 100:4.2f} {tar[1e-3] * 100:8.2f}% "
            f"{tar[1e-4] * 100:8.2f}% {moved.max():11.2e} / {np.median(moved):.2e}",
            flush=True,
        )

    lmeds = all_chips(root, images, points, "lstsq")  # the engine's chips (least squares)
    base = run(fp32, lmeds)
    report("lstsq (engine)", unit(base))
    at_fp32_thresholds(unit(base), found, labels)
    report("lstsq+flip", unit(base + run(fp32, lmeds[:, :, ::-1])))
    report("lmeds", unit(run(fp32, all_chips(root, images, points, "lmeds"))))
    raw_shipped = run(shipped, lmeds)
    report("shipped graph", unit(raw_shipped))
    print(
        f"fp32 graph vs shipped, {found.sum()} faces: raw descriptors max |diff| "
        f"{np.abs(raw_shipped[found] - base[found]).max():.2e} "
        f"(length ~{np.linalg.norm(base[found], axis=1).mean():.1f}), "
        f"unit embeddings {np.abs(unit(raw_shipped[found]) - unit(base[found])).max():.2e}",
        flush=True,
    )
    fast = unit(run(sessions["sface-int8"], lmeds))
    report("sface-int8", fast)
    at_fp32_thresholds(fast, found, labels)
    if "int8-static" in sessions:
        report("int8-static", unit(run(sessions["int8-static"], lmeds)))
    chips = {"lmeds": lmeds}
    timing(sessions, chips["lmeds"][found][: args.timing_faces])
    return 0


def at_fp32_thresholds(vectors: np.ndarray, found: np.ndarray, labels: np.ndarray) -> None:
    """False-accept rate and TAR of ``vectors`` at the shipped fp32 thresholds (all lfw-dev pairs)."""
    from faceplus.calibration import default_calibration
    from faceplus.evaluation.calibrate import pair_distances

    genuine, impostor = pair_distances(vectors[found], labels[found])
    total_genuine = sum(c * (c - 1) // 2 for c in np.unique(labels, return_counts=True)[1])
    for level, distance in default_calibration("sface").threshold_distances.items():
        far = np.mean(impostor < distance) / float(level)
        print(
            f'  at fp32\'s "{level}" ({distance:.4f}): FAR {far:.2f}x nominal, '
            f"TAR {np.sum(genuine < distance) / total_genuine * 100:.2f}%",
            flush=True,
        )


def fairface_chips(count: int) -> np.ndarray:
    """Aligned chips of the first ``count`` fairface-dev images (labels.csv order) the engine finds a face in."""
    from faceplus.chips import arcface_chips
    from faceplus.embedders import face_keypoints
    from faceplus.engine import Engine, NoFaceFound

    root = DATA / "fairface-dev"
    engine = Engine()
    chips = []
    for line in (root / "labels.csv").read_text().splitlines()[1:]:
        decoded = engine.load(root / line.split(",")[0])
        try:
            face = engine.main_face(decoded, prefer="largest", embed=False)
        except NoFaceFound:
            continue
        chips.append(arcface_chips(decoded.rgb, [face_keypoints(face)])[0])
        if len(chips) == count:
            break
    return np.stack(chips)


def write_ranges(path: Path) -> int:
    """Measure the sface-int8 activation ranges on fairface-dev and write them as ``faceplus.data`` ships them."""
    import datetime
    import json

    from faceplus.convert.sface_int8 import activation_ranges, float_graph
    from faceplus.models import sface

    chips = fairface_chips(RANGES_FACES)
    ranges = activation_ranges(float_graph(sface.weights_path()), chips, "percentile", RANGES_PERCENTILE)
    info = {
        "command": f"uv run python benchmarks/sface_variants.py --write-ranges {path}",
        "data": f"fairface-dev (FairFace, Karkkainen and Joo, WACV 2021, CC BY 4.0): the first {len(chips)} "
        "images in labels.csv order the engine finds a face in, aligned as the engine aligns them",
        "method": f"{RANGES_PERCENTILE}th percentile of |x| per tensor (onnxruntime.quantization create_calibrator)",
        "date": datetime.date.today().isoformat(),
    }
    path.write_text(json.dumps({"info": info, "ranges": ranges}, indent=1) + "\n")
    print(f"{len(ranges)} tensor ranges from {len(chips)} fairface-dev faces -> {path}")
    return 0


def int8_model(count: int) -> bytes | None:
    """Static int8 QDQ of the fp32 graph, ranges on utkface-dev faces (aligned as the engine aligns them)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from faceplus.models import sface

    folder = DATA / "utkface-dev"
    if not folder.is_dir():
        print("utkface-dev missing: no int8 row")
        return None
    files = sorted(folder.glob("images/*.jpg"))[:count]
    _init()
    from faceplus.embedders import face_keypoints

    assert _engine is not None
    chips = []
    for path in files:
        decoded = _engine.load(str(path))
        faces = _engine.detect(decoded, embed=False)
        if faces:
            chips.append(chip(decoded.rgb, face_keypoints(faces[0]), "lmeds"))
    batches = [np.stack(chips[i : i + 16]) for i in range(0, len(chips), 16)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self):  # noqa: ANN202
            batch = next(self.items, None)
            return None if batch is None else {"data": batch.transpose(0, 3, 1, 2).astype(np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(sface.model_path()), str(prepared), skip_symbolic_shape=True)
        import onnx

        gemm = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in ("Gemm", "MatMul")]
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=gemm,
        )
        print(f"int8-static: ranges on {len(chips)} utkface-dev faces; Gemm kept in float")
        return out.read_bytes()


def timing(sessions: dict, chips: np.ndarray, rounds: int = 5) -> None:  # noqa: ANN001
    inputs = [np.ascontiguousarray(c.transpose(2, 0, 1)[None], dtype=np.float32) for c in chips]
    times: dict[str, list[float]] = {name: [] for name in sessions}
    names = list(sessions)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            for x in inputs:
                sessions[name].run(None, {"data": x})
            times[name].append((time.perf_counter() - start) / len(inputs) * 1000)
    base = statistics.median(times["fp32"])
    print(f"ms per face (1 face per call, 1 thread, median of {rounds} rounds of {len(inputs)}):")
    for name in names:
        ms = statistics.median(times[name])
        print(f"  {name:<12} {ms:6.2f} ms  x{ms / base:.2f} of fp32")


if __name__ == "__main__":
    raise SystemExit(main())
