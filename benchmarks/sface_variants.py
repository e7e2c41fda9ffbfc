"""SFace as the engine runs it, against its variants, on lfw-dev: alignment fit, flip TTA, graph, int8; one run.

    OMP_NUM_THREADS=1 uv run python benchmarks/sface_variants.py [--cache /tmp/faceplus-sface/keypoints.npz]
        [--workers 2] [--timing-faces 64] [--calib-images 300]

Every lfw-dev image's centre face is found once by the engine's own path (detection chain, dlib's 68 landmarks,
the 5 ArcFace key points derived from them: ``faceplus.embedders.face_keypoints``) and the key points cached.
Rows (each embeds every image again from those key points):

- ``lstsq`` (the engine: the similarity fitted by plain least squares, Umeyama, as insightface's ``norm_crop``;
  ``cv2.warpAffine``; fp32 graph; one pass);
- ``lmeds``: the similarity fitted by ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)`` instead;
- ``lstsq+flip``: the mean of the chip's and its mirror's descriptors, then unit length;
- ``shipped``: the as-shipped int8-block graph (only its unused inputs removed), one pass;
- ``int8-static``: onnxruntime's static QDQ quantization of the fp32 graph (int8 weights per channel, uint8
  activations, MinMax ranges on ``--calib-images`` utkface-dev faces, never lfw-dev; the final Gemm in float).

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
    args = parser.parse_args()

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
    sessions = {"fp32": fp32, "shipped": shipped}
    int8 = int8_model(args.calib_images)
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
    if "int8-static" in sessions:
        report("int8-static", unit(run(sessions["int8-static"], lmeds)))
    chips = {"lmeds": lmeds}
    timing(sessions, chips["lmeds"][found][: args.timing_faces])
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
