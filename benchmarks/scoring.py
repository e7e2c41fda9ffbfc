"""What scoring costs: ``Engine.confidences`` (compare's and search's one path), raw and cohort-normalised.

    OMP_NUM_THREADS=1 uv run python benchmarks/scoring.py [--repeats 30] [--faces 2000]

Shapes: 1 x 1 (compare), 1 x 20 (search re-scoring its candidates under a cohort calibration), and n x n
(eval far's tables). Baseline in the same run: the former cohort density, a float32 matrix product over all
faces at once, which is faster but gives a face another density (~1e-7 on unit embeddings) depending on the batch it
is in; printed is how much slower the exact one-face-at-a-time density is, and how far the batched one moves.
Embeddings are random unit vectors (the cost does not depend on the faces); the cohort is the shipped one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from faceplus.calibration import SAME_FACE_DISTANCE, CohortNorm, compare_calibration, default_calibration


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def batched_density(norm: CohortNorm, embeddings: np.ndarray) -> np.ndarray:
    """The former CohortNorm.density: all faces in one float32 matrix product (depends on the batch's shape)."""
    e = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)
    d = np.sqrt(np.maximum(2.0 - 2.0 * (e @ norm.vectors.T), 0.0))
    d[d < SAME_FACE_DISTANCE] = np.inf
    return np.partition(d, norm.k - 1, axis=1)[:, : norm.k].mean(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--faces", type=int, default=2000, help="n of the n x n table")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    faces = rng.standard_normal((max(args.faces, 21), 128)).astype(np.float32)
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    raw, cohort = default_calibration("resnet"), compare_calibration("cohort")  # the cohort file is ResNet's
    norm = cohort.cohort()
    assert norm is not None
    print(f"cohort: {len(norm.vectors)} faces, k {norm.k}; {args.repeats} repeats, median ms")
    print(f"{'shape':>12} {'raw':>9} {'cohort':>9}")
    for label, a, b, repeats in (
        ("1 x 1", faces[:1], faces[1:2], args.repeats),
        ("1 x 20", faces[:1], faces[1:21], args.repeats),
        (f"{args.faces} x {args.faces}", faces[: args.faces], faces[: args.faces], 1),
    ):
        times = [_median_ms(lambda cal=cal, a=a, b=b: cal.confidences(a, b), repeats) for cal in (raw, cohort)]
        print(f"{label:>12} {times[0]:9.2f} {times[1]:9.2f}")
    exact = _median_ms(lambda: norm.density(faces[:21]), args.repeats)
    batched = _median_ms(lambda: batched_density(norm, faces[:21]), args.repeats)
    print(f"density of 21 faces: exact {exact:.2f} ms, batched float32 {batched:.2f} ms ({exact / batched:.1f}x)")
    alone = np.array([batched_density(norm, faces[i : i + 1])[0] for i in range(21)])
    moved = np.abs(alone - batched_density(norm, faces[:21])).max()
    same = all(norm.density(faces[i : i + 1])[0] == norm.density(faces[:21])[i] for i in range(21))
    print(f"a face's density alone vs in the batch: batched float32 moves up to {moved:.1e}; exact: same {same}")


if __name__ == "__main__":
    main()
