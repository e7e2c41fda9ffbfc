"""What one detect call costs, by kind and size of image: a photo with a face against photos without one.

    uv run python benchmarks/cost.py [--repeats 3] [--timeout 60] [--max-memory-gb 8] [--sizes 250,1024,2048,4096]

Each (kind, size) runs in a fresh subprocess: it loads the engine, warms it on the lfw-dev face photo
(so model loading is not counted), then calls ``Engine().detect`` on the image ``--repeats`` times.
Printed: the median seconds per call, the process's peak RSS and how much the calls raised it above the
warmed engine's peak (``ru_maxrss``), the faces found, and the time as a multiple of the 250 px face photo's
and of the face photo's at the same size (decoding a 4096 px file costs the same with or without a face).
A subprocess is killed after ``--timeout`` seconds and may not map more than ``--max-memory-gb``
(so an unbounded detector shows up as a timeout or a memory error, not as a machine out of memory).

Every image is generated here (no binary files): the lfw-dev face photo (and the same photo scaled up to
each size), one colour (JPEG), uniform noise (passed as an array: encoded, it would pass the 2 MB limit),
a landscape-like picture (sky gradient, hills, textured ground; JPEG), a decompression-bomb-like one-colour
PNG (7 KB at 4096 px), and a JPEG whose header claims 4096x4096 but holds a few hundred bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FACE_PHOTO = "lfw-dev/Alexander_Downer/Alexander_Downer_0001.jpg"
KINDS = ("face", "plain", "noise", "landscape", "bomb")
SIZES = (250, 1024, 2048, 4096)


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _face_photo() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(DATA / FACE_PHOTO).convert("RGB"))


def landscape(size: int, seed: int = 0) -> np.ndarray:
    """A smooth no-face picture: sky gradient, a wavy horizon, ground with blurred noise texture."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    sky = np.stack([110 + 80 * y, 150 + 60 * y, 230 - 30 * y], axis=-1)
    horizon = 0.55 + 0.06 * np.sin(2 * np.pi * (1.3 * x + 0.2)) + 0.03 * np.sin(2 * np.pi * (4.7 * x))
    coarse = cv2.resize(rng.normal(0, 1, (size // 16 + 1, size // 16 + 1)).astype(np.float32), (size, size))
    ground = np.stack([70 + 25 * coarse, 110 + 30 * coarse, 50 + 15 * coarse], axis=-1) * (1.1 - 0.4 * y[..., None])
    rgb = np.where((y > horizon)[..., None], ground, sky) + rng.normal(0, 2, (size, size, 1))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_image(kind: str, size: int):
    """The image to detect in, as the engine accepts it (encoded bytes, or an array)."""
    from PIL import Image

    if kind == "face":
        photo = _face_photo()
        if size == photo.shape[0]:
            return (DATA / FACE_PHOTO).read_bytes()
        return _jpeg(np.asarray(Image.fromarray(photo).resize((size, size), Image.Resampling.BICUBIC)))
    if kind == "plain":
        return _jpeg(np.full((size, size, 3), (120, 140, 160), np.uint8))
    if kind == "noise":
        return np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
    if kind == "landscape":
        return _jpeg(landscape(size), quality=80)
    if kind == "bomb":
        out = io.BytesIO()
        bomb = Image.new("P", (size, size), 0)
        bomb.putpalette([200, 30, 30])
        bomb.save(out, "PNG", optimize=True)
        return out.getvalue()
    if kind == "lying-jpeg":
        return _jpeg(np.full((4096, 4096, 3), 128, np.uint8))[:600]  # header says 4096x4096, data stops at once
    raise ValueError(kind)


def child(kind: str, size: int, repeats: int) -> dict:
    """Runs in the subprocess: warm an engine, then time detect on one generated image."""
    from faceplus import Engine
    from faceplus.errors import FaceplusError

    engine = Engine()
    engine.detect((DATA / FACE_PHOTO).read_bytes())
    image = make_image(kind, size)
    nbytes = len(image) if isinstance(image, bytes) else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, faces, error = [], 0, None
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            faces = len(engine.detect(image))
        except FaceplusError as exc:
            error = type(exc).__name__
        except MemoryError:
            error = "MemoryError"
        times.append(time.perf_counter() - start)
        if error == "MemoryError" or sum(times) > 20:  # one call is enough to show a slow kind
            break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"times": times, "rss_peak_kb": peak, "rss_rise_kb": peak - before, "faces": faces,
            "error": error, "bytes": nbytes}  # fmt: skip


def run_one(kind: str, size: int, repeats: int, timeout: float, max_memory_gb: float) -> dict:
    limit = int(max_memory_gb * 2**30)

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    cmd = [sys.executable, __file__, "--child", kind, str(size), str(repeats)]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=cap_memory)
    except subprocess.TimeoutExpired:
        return {"times": [time.perf_counter() - start], "error": f"killed after {timeout:.0f} s", "faces": None}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"times": [time.perf_counter() - start], "error": f"crashed: {tail[:60]}", "faces": None}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a (kind, size) subprocess may run")
    parser.add_argument("--max-memory-gb", type=float, default=8.0, help="address space a subprocess may map")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SIZE", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size, repeats = args.child
        print(json.dumps(child(kind, int(size), int(repeats))))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [("face", 250)] + [(k, s) for k in args.kinds.split(",") for s in sizes if (k, s) != ("face", 250)]
    cases.append(("lying-jpeg", 4096))
    print(f"detect cost per call, {os.cpu_count()} CPUs, median of up to {args.repeats} calls, fresh process each")
    columns = f"{'faces':>5} {'median s':>9} {'peak MB':>8} {'rise MB':>8} {'x face250':>9} {'x face same px':>14}"
    print(f"{'image':<12} {'px':>5} {'input':>10} {columns}  note")
    base = None
    face_at: dict[int, float] = {}  # the face photo's median at each size (the first rows)
    cases.sort(key=lambda case: case[0] != "face")  # face photos first: every other row is compared to them
    for kind, size in cases:
        r = run_one(kind, size, args.repeats, args.timeout, args.max_memory_gb)
        median = statistics.median(r["times"])
        base = base or median
        source = "array" if kind == "noise" else f"{r['bytes'] / 1024:.0f} KB" if r.get("bytes") else "-"
        faces = "-" if r.get("faces") is None else r["faces"]
        peak = f"{r['rss_peak_kb'] / 1024:.0f}" if "rss_peak_kb" in r else "-"
        rise = f"{r['rss_rise_kb'] / 1024:.0f}" if "rss_rise_kb" in r else "-"
        if kind == "face" and not r.get("error"):
            face_at[size] = median
        same = f"{median / face_at[size]:13.1f}x" if size in face_at else f"{'-':>14}"
        figures = f"{faces!s:>5} {median:9.3f} {peak:>8} {rise:>8} {median / base:8.1f}x {same}"
        print(f"{kind:<12} {size:>5} {source:>10} {figures}  {r.get('error') or ''}")


if __name__ == "__main__":
    main()
