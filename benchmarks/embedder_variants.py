"""Faster variants of the identity embedder (dlib's ResNet on onnxruntime) against the exact fp32 model, one run.

    uv run python benchmarks/embedder_variants.py [--chips /tmp/faceplus-variants/chips.npz]
        [--pairs-per-fold N] [--calib-photos 200] [--timing-faces 32] [--runs 9] [--detect-images 200]
        [--models fp32 int8-static ...] [--write-ranges FILE]

Models: ``fp32`` (the engine's default: dlib's network, descriptors within 3.3e-7 of dlib), ``int8-static``
(QDQ, int8 weights per channel, uint8 activations whose ranges are measured on ``--calib-photos`` chips of
utkface-dev and their mirrors, never on the lfw-dev images reported on; the last, fully connected layer in
float; ``faceplus.convert.resnet_int8``, the model ``FACEPLUS_EMBEDDER=resnet-int8`` runs),
``int8-dynamic`` (onnxruntime's dynamic quantization: int8 weights, activation ranges per call) and ``fp16``
(weights and activations in float16, float32 in and out). Each runs as the engine runs it, with flip TTA (the
chip and its mirror, two passes in one batch; the default) and in one pass.

Per row: ms per face with 1 and 8 faces per call (``Engine.embed_chips`` with the model swapped in, 1
onnxruntime thread, median of ``--runs`` rounds in which every row takes its turn, rotated, so machine load
falls alike); the time against the default row; the largest and mean absolute difference of raw descriptors
to fp32's on the same chips (the engine's dlib agreement test asks <= 1e-4); the L2 distance of each face's
embedding to its default embedding (fp32 with TTA); LFW 10-fold accuracy and TAR at FAR 1e-3 on lfw-dev's
pairs-dev.txt (``faceplus.evaluation.lfw``, as ``faceplus eval lfw`` computes them: centre face, 68-point chip,
unit length, the shipped calibration's confidence); the same accuracy with one side of each pair from the
default model ("mixed": a query embedded by the variant against a FaceSet stored by fp32); and TAR / FAR at the
shipped thresholds (``src/faceplus/data/calibration.json``) over all same-person and all cross-person pairs of
the reported images. Last, the whole ``Engine.detect`` (decode to embedding) per lfw-dev image under each
pair of settings FACEPLUS_EMBEDDER x FACEPLUS_FLIP_TTA, taking turns every 10 images (``--detect-images``).

Chips are computed once by the engine's own path (decode, detect, landmarks, 68-point chip) and cached in
``--chips``; later runs read them in seconds. ``--pairs-per-fold`` bounds the run (e.g. 20: 400 pairs); the
default uses all 4,000 pairs (3,419 images). ``--write-ranges FILE`` writes this run's int8 activation ranges
(e.g. to ``src/faceplus/data/resnet_int8_ranges.json``, the file ``FACEPLUS_EMBEDDER=resnet-int8`` is built from).
Reads lfw-dev and utkface-dev from ../shared/data. On the project's 2-core VM the full run took 5 min 8 s from
an empty chip cache (66 s of it chips), 4-5.3 min with chips cached (int8-dynamic's descriptors: 2-2.7 min);
``--models fp32 int8-static --detect-images 0``: 45 s. Figures: docs/ENGINE.md, "Faster embedder variants".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MODELS = ("fp32", "int8-static", "int8-dynamic", "fp16")
DEFAULT = ("fp32", True)  # (model, flip TTA): what the engine runs


# -- chips, computed once by the engine ------------------------------------------------------------------------
def chip_engine():  # noqa: ANN201
    """The engine as ``faceplus eval lfw`` runs it (benchmark images are evaluated whatever their size)."""
    from faceplus.engine import Engine
    from faceplus.settings import DetectionSettings, EngineSettings, ImageLimits

    limits = ImageLimits(min_side=1, max_side=100_000, max_bytes=1 << 31)
    return Engine(EngineSettings(limits=limits, detection=DetectionSettings(min_face=20)))


def load_chips(cache: Path, keys: list[str]) -> dict[str, np.ndarray | None]:
    """The 68-point chip of the centre face of each image (``DATA``-relative key); None where no face was found.

    Chips already in ``cache`` are read from it; the others are computed (one process) and added to it.
    """
    from faceplus.engine import NoFaceFound

    known: dict[str, np.ndarray | None] = {}
    if cache.is_file():
        with np.load(cache) as data:
            for key, chip, found in zip(data["keys"], data["chips"], data["found"], strict=True):
                known[str(key)] = chip if found else None
    todo = [k for k in keys if k not in known]
    if todo:
        engine, start = chip_engine(), time.perf_counter()
        for n, key in enumerate(todo, 1):
            decoded = engine.load(DATA / key)
            try:
                face = engine.main_face(decoded, prefer="center", embed=False)
                known[key] = engine.chips(decoded.rgb, [face])[0]
            except NoFaceFound:
                known[key] = None
            if n % 500 == 0 or n == len(todo):
                print(f"  chips: {n}/{len(todo)} in {time.perf_counter() - start:.0f} s", flush=True)
        blank = np.zeros((150, 150, 3), np.uint8)
        names = list(known)
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                keys=np.array(names),
                chips=np.stack([blank if known[k] is None else known[k] for k in names]),
                found=np.array([known[k] is not None for k in names]),
            )
        os.replace(tmp, cache)
    return {k: known[k] for k in keys}


# -- the models ------------------------------------------------------------------------------------------------
def build_models(folder: Path, calib_chips: np.ndarray, write_ranges: Path | None) -> dict[str, Path]:
    """Each variant's ONNX file in ``folder``, made from the engine's cached fp32 conversion."""
    import onnx
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from faceplus.convert.resnet_int8 import activation_ranges, quantize
    from faceplus.models.resnet_onnx import model_path

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"fp32": model_path("resnet")}
    start = time.perf_counter()
    ranges = activation_ranges(paths["fp32"], calib_chips)
    paths["int8-static"] = folder / "int8-static.onnx"
    paths["int8-static"].write_bytes(quantize(paths["fp32"], ranges))
    print(f"  int8-static: {len(ranges)} activation ranges from {len(calib_chips)} utkface-dev chips and their")
    print(f"  mirrors, quantized in {time.perf_counter() - start:.1f} s")
    if write_ranges:
        info = {
            "command": "uv run python benchmarks/embedder_variants.py --write-ranges " + str(write_ranges),
            "data": f"utkface-dev: {len(calib_chips)} chips (every k-th image in name order) and their mirrors",
            "method": "MinMax over all calibration chips (onnxruntime.quantization create_calibrator)",
            "date": datetime.now(UTC).date().isoformat(),
        }
        write_ranges.write_text(ranges_json(info, ranges))
        print(f"  wrote {write_ranges}")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(paths["fp32"]), str(prepared), skip_symbolic_shape=True)
        paths["int8-dynamic"] = folder / "int8-dynamic.onnx"
        quantize_dynamic(str(prepared), str(paths["int8-dynamic"]), per_channel=True, weight_type=QuantType.QInt8)
    paths["fp16"] = folder / "fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(paths["fp32"])), keep_io_types=True), str(paths["fp16"]))
    return paths


def ranges_json(info: dict[str, str], ranges: dict[str, tuple[float, float]]) -> str:
    """The ranges file: its provenance, then one tensor a line in graph order (names end in their node number)."""

    def order(name: str) -> tuple[int, str]:
        number = name.rsplit("_", 1)[-1]
        return (int(number) if number.isdigit() else -1, name)

    lines = [
        f"  {json.dumps(name)}: [{lo!r}, {hi!r}]"
        for name, (lo, hi) in sorted(ranges.items(), key=lambda r: order(r[0]))
    ]
    return '{\n "info": ' + json.dumps(info, indent=2)[:-1] + ' },\n "ranges": {\n' + ",\n".join(lines) + "\n }\n}\n"


class SessionEmbedder:
    """An onnxruntime session of one variant, in the shape the engine's ``Embedder`` protocol asks for."""

    def __init__(self, path: Path) -> None:
        from faceplus.models import runtime

        self.session = runtime.session(path, threads=1)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {"chips": np.ascontiguousarray(chips)})
        return out


def descriptors(embedder: SessionEmbedder, chips: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Raw descriptors of ``chips`` and of their mirror images."""
    both = [embedder.embed(np.concatenate([c, c[:, :, ::-1]])) for c in np.array_split(chips, -(-len(chips) // batch))]
    return np.concatenate([b[: len(b) // 2] for b in both]), np.concatenate([b[len(b) // 2 :] for b in both])


# -- speed -----------------------------------------------------------------------------------------------------
def timing(embedders: dict[str, SessionEmbedder], chips: np.ndarray, runs: int) -> dict[tuple[str, bool, int], float]:
    """Median ms per face of ``Engine.embed_chips`` for each (model, flip TTA, faces per call), rounds interleaved."""
    from faceplus.engine import Engine, EngineModels
    from faceplus.settings import EngineSettings

    engine = chip_engine()
    rows: dict[tuple[str, bool, int], Callable[[np.ndarray], np.ndarray]] = {}
    for name, embedder in embedders.items():
        for tta in (True, False):
            models = EngineModels(dlib=engine.dlib, make_embedder=lambda e=embedder: e)
            variant = Engine(EngineSettings(flip_tta=tta), models=models)
            for batch in (1, 8):
                rows[(name, tta, batch)] = variant.embed_chips
    for key, embed in rows.items():  # warm-up: first runs allocate
        embed(chips[: key[2]])
    samples: dict[tuple[str, bool, int], list[float]] = {key: [] for key in rows}
    keys = list(rows)
    for r in range(runs):
        shift = (r * 5) % len(keys)
        for key in keys[shift:] + keys[:shift]:
            batch = key[2]
            start = time.perf_counter()
            for i in range(0, len(chips), batch):
                rows[key](chips[i : i + batch])
            samples[key].append((time.perf_counter() - start) * 1000 / len(chips))
    return {key: statistics.median(values) for key, values in samples.items()}


def detect_timing(paths: list[Path], rounds: int = 2, turn: int = 10) -> dict[tuple[str, bool], float]:
    """ms per image of ``Engine.detect`` (decode to embedding) for each setting pair (FACEPLUS_EMBEDDER, flip TTA).

    The engines take turns every ``turn`` images, the order rotating, so all see the same load.
    """
    from faceplus.engine import Engine
    from faceplus.settings import EMBEDDERS, EngineSettings

    blobs = [path.read_bytes() for path in paths]
    engines = {
        (name, tta): Engine(EngineSettings(embedder=name, flip_tta=tta)) for name in EMBEDDERS for tta in (True, False)
    }
    for engine in engines.values():
        engine.detect(blobs[0])
    spent = dict.fromkeys(engines, 0.0)
    keys = list(engines)
    for r in range(rounds):
        for n, i in enumerate(range(0, len(blobs), turn)):
            shift = (n + r) % len(keys)
            for key in keys[shift:] + keys[:shift]:
                start = time.perf_counter()
                for blob in blobs[i : i + turn]:
                    engines[key].detect(blob)
                spent[key] += time.perf_counter() - start
    return {key: seconds * 1000 / (rounds * len(blobs)) for key, seconds in spent.items()}


# -- accuracy --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Accuracy:
    lfw: str  # "98.90% +- 0.58"
    lfw_tar: float  # TAR at FAR 1e-3 on pairs-dev's pairs
    mixed: str  # LFW with one side of each pair from the default model
    at_thresholds: dict[str, tuple[float, int, float, int]]  # FAR level -> (TAR, accepted, FAR, accepted)
    pair_counts: tuple[int, int]  # all same-person and all cross-person pairs of the faces found


def accuracy(vectors: np.ndarray, default: np.ndarray, keys: list[str], pairs: list, with_face: np.ndarray) -> Accuracy:
    """LFW 10-fold (also mixed with the default model), and TAR/FAR at the shipped thresholds over all pairs."""
    from faceplus.calibration import default_calibration
    from faceplus.evaluation.lfw import evaluate

    calibration = default_calibration("resnet")  # the variants here are all dlib ResNet's
    by_key = dict(zip(keys, vectors, strict=True))
    result = evaluate(pairs, by_key, calibration)
    mixed_pairs = [type(p)(p.fold, p.same, p.image1, "mixed/" + p.image2) for p in pairs]
    mixed = evaluate(
        mixed_pairs,
        {**dict(zip(keys, default, strict=True)), **{"mixed/" + k: v for k, v in by_key.items()}},
        calibration,
    )
    found = vectors[with_face].astype(np.float64)
    people = np.array([k.split("/")[0] for k in np.array(keys)[with_face]])
    distances = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * found @ found.T))
    upper = np.triu(np.ones(distances.shape, bool), 1)
    same = (people[:, None] == people[None]) & upper
    different = (people[:, None] != people[None]) & upper
    genuine, impostor = distances[same], distances[different]
    rates = {}
    for far, threshold in calibration.threshold_distances.items():
        tar_n, far_n = int((genuine <= threshold).sum()), int((impostor <= threshold).sum())
        rates[far] = (tar_n / len(genuine), tar_n, far_n / len(impostor), far_n)
    return Accuracy(
        f"{result.mean * 100:.2f}% +- {result.std * 100:.2f}",
        result.tar_at_far_1e3,
        f"{mixed.mean * 100:.2f}%",
        rates,
        (len(genuine), len(impostor)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=Path, default=Path("/tmp/faceplus-variants/chips.npz"), help="chip cache")
    parser.add_argument("--pairs-per-fold", type=int, default=0, help="same and different pairs per fold (0: all)")
    parser.add_argument("--calib-photos", type=int, default=200, help="utkface-dev photos the int8 ranges come from")
    parser.add_argument("--timing-faces", type=int, default=32, help="faces per timing round")
    parser.add_argument("--runs", type=int, default=9, help="timing rounds (the median is reported)")
    parser.add_argument("--detect-images", type=int, default=200, help="lfw-dev images for Engine.detect timing")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--write-ranges", type=Path, help="write the int8 activation ranges measured here")
    args = parser.parse_args()
    if "fp32" not in args.models:
        parser.error("fp32 is the reference: keep it in --models")

    import onnxruntime

    from faceplus.evaluation.lfw import read_pairs

    begin = time.perf_counter()
    load = [os.getloadavg()[0]]
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs,"
    )
    print(f"onnxruntime {onnxruntime.__version__}, 1 thread per session, load average {load[0]:.2f}")

    pairs = read_pairs(DATA / "lfw-dev" / "pairs-dev.txt")
    if args.pairs_per_fold:
        kept: dict[tuple[int, bool], int] = {}
        chosen = []
        for p in pairs:
            if kept.get((p.fold, p.same), 0) < args.pairs_per_fold:
                kept[(p.fold, p.same)] = kept.get((p.fold, p.same), 0) + 1
                chosen.append(p)
        pairs = chosen
    lfw_keys = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    utk = sorted((DATA / "utkface-dev" / "images").glob("*.jpg"))
    utk_keys = [str(p.relative_to(DATA)) for p in utk[:: max(1, len(utk) // args.calib_photos)][: args.calib_photos]]

    start = time.perf_counter()
    chips = load_chips(args.chips, ["lfw-dev/" + k for k in lfw_keys] + utk_keys)
    print(
        f"chips of {len(lfw_keys)} lfw-dev and {len(utk_keys)} utkface-dev images: {time.perf_counter() - start:.0f} s"
    )
    with_face = np.array([chips["lfw-dev/" + k] is not None for k in lfw_keys])
    lfw_chips = np.stack([chips["lfw-dev/" + k] for k, ok in zip(lfw_keys, with_face, strict=True) if ok])
    calib = np.stack([c for k in utk_keys if (c := chips[k]) is not None])
    print(f"  faces: lfw-dev {len(lfw_chips)} of {len(lfw_keys)} ({len(pairs)} pairs), utkface-dev {len(calib)}")

    start = time.perf_counter()
    paths = build_models(args.chips.parent / "models", calib, args.write_ranges)
    paths = {name: paths[name] for name in args.models}
    from faceplus.models.resnet_onnx import model_path

    try:
        shipped = model_path("resnet-int8").read_bytes() == paths["int8-static"].read_bytes()
        print(
            f"  FACEPLUS_EMBEDDER=resnet-int8's model is {'identical to' if shipped else 'NOT'} this run's int8-static"
        )
    except (FileNotFoundError, KeyError):
        print("  (no shipped int8 ranges to compare with)")
    embedders = {name: SessionEmbedder(path) for name, path in paths.items()}
    print(f"models built in {time.perf_counter() - start:.0f} s")

    start = time.perf_counter()
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, embedder in embedders.items():
        t0 = time.perf_counter()
        raw[name] = descriptors(embedder, lfw_chips)
        print(f"  {name}: {len(lfw_chips)} faces x 2 passes in {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"descriptors: {time.perf_counter() - start:.0f} s")

    from faceplus.engine import embeddings_from_descriptors

    def full(vectors: np.ndarray) -> np.ndarray:
        out = np.full((len(lfw_keys), 128), np.nan, np.float32)
        out[with_face] = vectors
        return out

    default = full(embeddings_from_descriptors(*raw["fp32"]))
    rows: dict[tuple[str, bool], dict] = {}
    for name, (plain, mirrored) in raw.items():
        for tta in (True, False):
            vectors = full(embeddings_from_descriptors(plain, mirrored if tta else None))
            ref = raw["fp32"][0] if not tta else np.concatenate(raw["fp32"])
            got = plain if not tta else np.concatenate([plain, mirrored])
            moved = np.linalg.norm(vectors[with_face] - default[with_face], axis=1)
            rows[(name, tta)] = {
                "diff": (float(np.abs(got - ref).max()), float(np.abs(got - ref).mean())),
                "moved": (float(np.median(moved)), float(moved.max())),
                "acc": accuracy(vectors, default, lfw_keys, pairs, with_face),
            }
    load.append(os.getloadavg()[0])

    start = time.perf_counter()
    step = max(1, len(lfw_chips) // args.timing_faces)
    speed = timing(embedders, lfw_chips[::step][: args.timing_faces], args.runs)
    load.append(os.getloadavg()[0])
    print(f"timing: {args.runs} rounds of {args.timing_faces} faces per row, {time.perf_counter() - start:.0f} s")

    whole = {}
    if args.detect_images:
        start = time.perf_counter()
        step = max(1, len(lfw_keys) // args.detect_images)
        whole = detect_timing([DATA / "lfw-dev" / k for k in lfw_keys[::step][: args.detect_images]])
        load.append(os.getloadavg()[0])
        print(
            f"Engine.detect: 2 rounds of {args.detect_images} images per setting, {time.perf_counter() - start:.0f} s"
        )

    base = {batch: speed[(*DEFAULT, batch)] for batch in (1, 8)}
    print()
    print(
        "| model | passes | ms/face, 1 face per call | 8 per call | time / default (1 / 8) | descriptor abs diff "
        "to fp32, max / mean | L2 to default embedding, median / max |"
    )
    print("|---|---|---|---|---|---|---|")
    for (name, tta), row in rows.items():
        b1, b8 = speed[(name, tta, 1)], speed[(name, tta, 8)]
        print(
            f"| {name} | {'2 (flip TTA)' if tta else '1'} | {b1:.2f} | {b8:.2f} "
            f"| {b1 / base[1]:.2f} / {b8 / base[8]:.2f}"
            f" | {row['diff'][0]:.2g} / {row['diff'][1]:.2g} | {row['moved'][0]:.3f} / {row['moved'][1]:.3f} |"
        )
    print()
    first: Accuracy = next(iter(rows.values()))["acc"]
    far_levels = list(first.at_thresholds)
    print(
        "| model | passes | LFW 10-fold | TAR@FAR1e-3 (pairs) | mixed with default | "
        + " | ".join(f'TAR / FAR at "{far}"' for far in far_levels)
        + " |"
    )
    print("|---|---|---|---|---|" + "---|" * len(far_levels))
    for (name, tta), row in rows.items():
        acc: Accuracy = row["acc"]
        cells = []
        for far in far_levels:
            tar, _, far_rate, far_n = acc.at_thresholds[far]
            cells.append(f"{tar * 100:.2f}% / {far_rate:.1e} ({far_n})")
        print(
            f"| {name} | {'2' if tta else '1'} | {acc.lfw} | {acc.lfw_tar * 100:.2f}% | {acc.mixed} | "
            + " | ".join(cells)
            + " |"
        )
    if whole:
        print("\n| FACEPLUS_EMBEDDER | FACEPLUS_FLIP_TTA | Engine.detect ms per lfw-dev image | time / default |")
        print("|---|---|---|---|")
        for (name, tta), ms in whole.items():
            print(f"| {name} | {int(tta)} | {ms:.1f} | {ms / whole[('resnet', True)]:.2f} |")
    genuine, impostor = first.pair_counts
    print(
        f"\nTAR / FAR over all {genuine:,} same-person / {impostor:,} cross-person pairs of the {int(with_face.sum())}"
    )
    print(
        "lfw-dev faces above (accepted impostor pairs in brackets); the shipped thresholds were fit on all of lfw-dev"
    )
    print("(4,033 photos) with fp32 and flip TTA, so for the default row they are not held out.")
    print(
        "load average (1 min): start, before the per-face timing, after it"
        + (", after Engine.detect" if whole else "")
        + ": "
        + ", ".join(f"{value:.2f}" for value in load)
        + f"; total {time.perf_counter() - begin:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
