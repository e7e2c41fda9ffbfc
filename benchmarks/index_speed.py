"""Bulk indexing speed: ``faceplus index`` against face_recognition's own command-line tool, same folder, same run.

    uv run --group bench python benchmarks/index_speed.py [--images 400] [--procs 1,2] [--data ../shared/data]

Both tools are run as a user runs them, as subprocesses, on one flat folder of symlinks to a fixed subset of
lfw-dev (every k-th file in name order; nothing is copied), at each process count, alternating tool by tool:

* ``face_recognition REFERENCE_DIR IMAGES_DIR --cpus N`` (face_recognition 1.3 on dlib-bin). Per image:
  PIL decode, dlib HOG at upsample 1 (the image doubled), 5-point landmarks, dlib's ResNet on the 5-point
  150x150 chip once (``num_jitters=1``, no mirror), on dlib without BLAS; then a distance to each known face
  and one printed line per face. The folder goes in as the *unknown* images because the CLI encodes known
  images in its main process one by one whatever ``--cpus`` says; the known folder holds one reference photo
  (not in the subset). ``--cpus N > 1`` is a multiprocessing pool (forkserver) over the unknown images.
* ``faceplus index IMAGES_DIR --faceset bench --workers N --api-key KEY`` into a fresh data folder (embedded
  SQLite store, key made by ``faceplus keys create``). Per image: decode, BlazeFace full range (onnxruntime)
  with each face re-boxed by HOG on a small crop (upsample 0), the fallback chain only where it finds
  nothing, 68- and 5-point landmarks, a chip aligned on the 68 points, the ResNet (ONNX) on the chip and its
  mirror (two passes, flip TTA); then every face is stored, added to the FaceSet and recorded in the
  resumable ledger. ``--workers 1`` runs in-process, ``N > 1`` is a pool of N spawned engine processes, each
  with one onnxruntime thread.

For each run: wall seconds of the whole command (imports, model loading and pool start-up included, as a
user's ``time`` shows) and the faces found. Each command is also run
once on a one-image folder first; "after start-up" is (images - 1) / (wall - that run's wall), the rate once
the tool is going. Ratios are faceplus / face_recognition at equal process counts, within this run; the
machine may be loaded by other work, so compare ratios, not raw rates, across runs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
DEFAULT_DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def lfw_subset(root: Path, count: int) -> tuple[list[Path], Path, int]:
    """``count`` lfw-dev photos (every k-th in name order, as throughput.py picks them), one outside them, k."""
    paths = sorted(root.glob("*/*.jpg"))
    step = max(1, len(paths) // count)
    chosen = paths[::step][:count]
    taken = set(chosen)
    reference = next(p for p in paths if p not in taken)
    return chosen, reference, step


def link_folder(folder: Path, paths: list[Path]) -> Path:
    """A flat folder of symlinks named as the files are (lfw names are unique), for both tools."""
    folder.mkdir(parents=True)
    for path in paths:
        (folder / path.name).symlink_to(path)
    return folder


@dataclass
class Run:
    wall: float
    faces: int
    no_face: int
    output: str


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(wall seconds, stdout + stderr). No CPU seconds: face_recognition's forkserver is never reaped, so
    getrusage would miss its pool's time."""
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout + proc.stderr


def run_face_recognition(images: Path, reference: Path, procs: int) -> Run:
    """face_recognition's CLI; faces counted from its output (one line per face, unbuffered so never split)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    command = [str(BIN / "face_recognition"), str(reference), str(images), "--cpus", str(procs)]
    wall, out = timed(command, env)
    # "path,reference" or "path,unknown_person" per face found, "path,no_persons_found" per photo without one
    faces = out.count(",reference") + out.count(",unknown_person")
    return Run(wall, faces, out.count(",no_persons_found"), out)


def run_faceplus(images: Path, data: Path, procs: int) -> Run:
    """``faceplus index`` into a fresh data folder under a new API key; faces read from its summary."""
    env = {k: v for k, v in os.environ.items() if k not in ("FACEPLUS_DATABASE_URL", "FACEPLUS_DATA_DIR")}
    created = subprocess.run(
        [str(BIN / "faceplus"), "keys", "create", "--data-dir", str(data)], capture_output=True, text=True, env=env
    )
    key = re.search(r"api_key:\s+(\S+)", created.stdout)
    if key is None:
        raise SystemExit(f"faceplus keys create: {created.stdout}\n{created.stderr}")
    command = [
        str(BIN / "faceplus"), "index", str(images), "--faceset", "bench", f"--api-key={key.group(1)}",
        "--data-dir", str(data), "--workers", str(procs), "--quiet",
    ]  # fmt: skip
    wall, out = timed(command, env)
    faces = re.search(r"^faces: (\d+)", out, re.M)
    no_face = re.search(r"^files with no face: (\d+)", out, re.M)
    errors = re.search(r"^errors: (\d+)", out, re.M)
    if faces is None or no_face is None or errors is None or errors.group(1) != "0":
        raise SystemExit(f"unexpected faceplus index output:\n{out}")
    return Run(wall, int(faces.group(1)), int(no_face.group(1)), out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--procs", default=",".join(str(n) for n in sorted({1, os.cpu_count() or 1})))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    procs = [int(n) for n in args.procs.split(",")]
    paths, reference, step = lfw_subset(args.data / "lfw-dev", args.images)
    for path in [*paths, reference]:
        path.read_bytes()  # same page cache for both tools
    n = len(paths)
    print(f"{n} lfw-dev images (every {step}th in name order), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")

    rows: list[tuple[str, int, Run, Run]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = link_folder(root / "images", paths)
        one = link_folder(root / "one", paths[:1])
        known = root / "known"
        known.mkdir()
        (known / f"reference{reference.suffix}").symlink_to(reference)
        for p in procs:
            for name in ("face_recognition", "faceplus"):
                if name == "face_recognition":
                    warm, full = (run_face_recognition(folder, known, p) for folder in (one, images))
                    label = f"face_recognition CLI --cpus {p}"
                else:
                    warm, full = (run_faceplus(folder, root / f"data-{p}-{folder.name}", p) for folder in (one, images))
                    label = f"faceplus index --workers {p}"
                rows.append((label, p, warm, full))
                print(f"  done: {label}: {full.wall:.1f} s", flush=True)

    print(f"\nload average (1 min) at end {os.getloadavg()[0]:.2f}")
    head = f"{'command':<34} {'wall s':>7} {'images/s':>9} {'1-image s':>10} {'after start-up':>15}"
    print(head + f" {'faces':>6} {'no face':>8}")
    rates: dict[tuple[str, int], tuple[float, float]] = {}
    for label, p, warm, full in rows:
        rate = n / full.wall
        steady = (n - 1) / max(full.wall - warm.wall, 1e-9)
        rates[(label.split()[0], p)] = (rate, steady)
        print(
            f"{label:<34} {full.wall:7.1f} {rate:9.2f} {warm.wall:10.2f} {steady:15.2f} "
            f"{full.faces:6d} {full.no_face:8d}"
        )
    print("\nfaceplus / face_recognition at equal process counts (images/s ratio):")
    for p in procs:
        fr, fp = rates[("face_recognition", p)], rates[("faceplus", p)]
        print(f"  {p} process(es): whole command {fp[0] / fr[0]:5.1f}x, after start-up {fp[1] / fr[1]:5.1f}x")
    if len(procs) > 1:
        lo, hi = min(procs), max(procs)
        for tool in ("face_recognition", "faceplus"):  # how each scales with processes
            a, b = rates[(tool, lo)], rates[(tool, hi)]
            print(
                f"  {tool}, {hi} processes / {lo}: whole command {b[0] / a[0]:.2f}x, after start-up {b[1] / a[1]:.2f}x"
            )


if __name__ == "__main__":
    main()
