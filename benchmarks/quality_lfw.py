"""Does ``facequality`` predict matching? Fit it on half of lfw-dev's identities, test it on the other half.

For every image of ``pairs-dev.txt`` the engine finds the face nearest the centre (as the LFW eval
does), embeds it (flip TTA, unit length) and measures what the quality model reads
(:func:`faceplus.attributes.quality.penalties`): eye distance, blurness, yaw, pitch, BlazeFace's
confidence, and (to show it does not help here) the length of the raw ResNet descriptor before
normalisation. pairs-dev.txt's folds are identity-disjoint: the
model's weights are fitted on same-person pairs of folds 0-4 (``--fit``: least squares of the pair's
distance on the sum of its two faces' features) and everything below is reported on folds 5-9.

Pairs are binned by the *lower* quality of their two faces, in quartiles whose edges are set on folds
0-4, plus below/above the Face++ threshold; per bin: mean same-person distance and false-reject rate at
the engine's calibrated 1e-4 FAR distance. If the score means anything, both rise as quality falls.

    uv run python benchmarks/quality_lfw.py --cache /tmp/quality_lfw.npz [--fit] [--folds 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceplus.attributes import FaceAnalyzer, quality
from faceplus.attributes.blur import face_blur
from faceplus.engine import Engine, NoFaceFound, normalize
from faceplus.evaluation.lfw import read_pairs
from faceplus.tools.clustering import link_calibration

FIT_FOLDS = range(0, 5)
FIELDS = ("iod", "blurness", "yaw", "pitch", "raw_norm", "confidence")


def measure(root: Path, images: list[str]) -> dict[str, np.ndarray]:
    """Embedding and quality features per image (NaN where no face is found)."""
    engine, analyzer = Engine(), FaceAnalyzer()
    emb = np.full((len(images), 128), np.nan, np.float32)
    feats = {k: np.full(len(images), np.nan) for k in FIELDS}
    start = time.time()
    for k, rel in enumerate(images):
        decoded = engine.load(root / rel)
        try:
            face = engine.main_face(decoded, prefer="center", embed=False)
        except NoFaceFound:
            continue
        chip = engine.chips(decoded.rgb, [face])
        raw = engine.embedder.embed(np.concatenate([chip, chip[:, :, ::-1]])).mean(axis=0)
        emb[k] = normalize(raw[None])[0]
        pose = analyzer.head_pose(decoded.rgb, face)
        values = {
            "iod": quality.inter_ocular(face.landmarks5),
            "blurness": face_blur(decoded.rgb, face.landmarks5).blurness,
            "yaw": pose.yaw,
            "pitch": pose.pitch,
            "raw_norm": float(np.linalg.norm(raw)),
            "confidence": quality.detection_confidence(face.detector, face.score),
        }
        for name, value in values.items():
            feats[name][k] = value
        if (k + 1) % 250 == 0:
            print(f"  {k + 1}/{len(images)} images, {time.time() - start:.0f} s", flush=True)
    return {"images": np.array(images), "emb": emb, **feats}


def scores(data: dict[str, np.ndarray]) -> np.ndarray:
    """facequality per image from the measured features (NaN where no face)."""
    out = np.full(len(data["images"]), np.nan)
    for i in range(len(out)):
        if np.isnan(data["raw_norm"][i]):
            continue
        out[i] = quality.face_quality(*(data[k][i] for k in ("iod", "blurness", "yaw", "pitch", "confidence"))).value
    return out


def fit(data: dict[str, np.ndarray], pairs: list, index: dict[str, int]) -> dict[str, float]:
    """Least squares: same-person distance ~ b + sum over both faces of w . penalties(face)."""
    rows, target = [], []
    for p in pairs:
        i, j = index[p.image1], index[p.image2]
        if not p.same or p.fold not in FIT_FOLDS or np.isnan(data["raw_norm"][[i, j]]).any():
            continue
        a, b = (quality.penalties(*(data[k][n] for k in ("blurness", "yaw", "pitch", "confidence"))) for n in (i, j))
        rows.append(np.concatenate([[1.0], a + b]))
        target.append(np.linalg.norm(data["emb"][i] - data["emb"][j]))
    coef, *_ = np.linalg.lstsq(np.array(rows), np.array(target), rcond=None)
    return {"intercept": float(coef[0]), **dict(zip(quality.PENALTY_NAMES, map(float, coef[1:]), strict=True))}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def _pair_quality(qual: np.ndarray, pairs: list, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    i1, i2 = np.array([index[p.image1] for p in pairs]), np.array([index[p.image2] for p in pairs])
    return np.minimum(qual[i1], qual[i2]), np.stack([i1, i2])


def report(data: dict[str, np.ndarray], pairs: list, index: dict[str, int], frr_distance: float) -> dict:
    """Per quality bin, on the held-out folds: same-person distance and false rejects."""
    qual = scores(data)
    fitted = [p for p in pairs if p.fold in FIT_FOLDS]
    fit_low, _ = _pair_quality(qual, fitted, index)
    edges = np.nanpercentile(fit_low, [25, 50, 75])
    bins = [(0.0, edges[0]), (edges[0], edges[1]), (edges[1], edges[2]), (edges[2], 100.01)]
    bins += [(0.0, quality.THRESHOLD), (quality.THRESHOLD, 100.01)]
    held = [p for p in pairs if p.fold not in FIT_FOLDS]
    ok = [p for p in held if not np.isnan(qual[[index[p.image1], index[p.image2]]]).any()]
    low, (i1, i2) = _pair_quality(qual, ok, index)
    dist = np.linalg.norm(data["emb"][i1] - data["emb"][i2], axis=1)
    same = np.array([p.same for p in ok])
    out: dict = {"held_out_pairs": len(held), "with_faces": len(ok), "frr_distance_1e-4": frr_distance, "bins": []}
    print(f"held-out folds: {len(ok)}/{len(held)} pairs with both faces; 1e-4 FAR distance {frr_distance:.3f}")
    print("quartiles of the pair's lower facequality (edges from folds 0-4), then below/above the threshold:")
    print("min facequality  same pairs  same-dist(mean)  FRR@1e-4  diff pairs  FAR@1e-4")
    for k, (lo, hi) in enumerate(bins):
        if k == 4:
            print(f"threshold {quality.THRESHOLD}:")
        m = (low >= lo) & (low < hi)
        s, d = m & same, m & ~same
        row = {
            "bin": [float(lo), float(min(hi, 100.0))],
            "same_pairs": int(s.sum()),
            "different_pairs": int(d.sum()),
            "same_distance_mean": float(dist[s].mean()) if s.any() else None,
            "frr_1e-4": float(np.mean(dist[s] > frr_distance)) if s.any() else None,
            "far_1e-4": float(np.mean(dist[d] <= frr_distance)) if d.any() else None,
        }
        out["bins"].append(row)
        if s.any():
            print(
                f"{lo:5.1f}-{min(hi, 100):5.1f}      {row['same_pairs']:10d}  {row['same_distance_mean']:15.3f}"
                f"  {row['frr_1e-4']:8.3f}  {row['different_pairs']:10d}  {row['far_1e-4'] or 0:8.4f}"
            )
    out["spearman_same_distance_vs_min_quality"] = spearman(low[same], dist[same])
    print(f"Spearman(same-person distance, min quality) = {out['spearman_same_distance_vs_min_quality']:.3f}")
    for name in FIELDS:
        worse = np.minimum if name in ("iod", "raw_norm", "confidence") else np.maximum
        values = data[name] if name in ("iod", "raw_norm", "confidence", "blurness") else np.abs(data[name])
        rho = spearman(worse(values[i1], values[i2])[same], dist[same])
        out[f"spearman_same_distance_vs_{name}"] = rho
        print(f"  Spearman(same-person distance, worse {name} of the pair) = {rho:.3f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--folds", type=int, default=10, help="use the first N folds (fewer = faster)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--cache", type=Path, help="reuse/save per-image measurements (.npz) here")
    parser.add_argument("--fit", action="store_true", help="print weights fitted on folds 0-4")
    args = parser.parse_args()
    root = args.data / "lfw-dev"
    pairs = [p for p in read_pairs(root / "pairs-dev.txt") if p.fold < args.folds]
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    print(f"{len(pairs)} pairs, {len(images)} images")
    if args.cache and args.cache.exists():
        data = dict(np.load(args.cache))
    else:
        data = measure(root, images)
        if args.cache:
            np.savez(args.cache, **data)
    index = {str(rel): i for i, rel in enumerate(data["images"])}
    if args.fit:
        print("fitted on folds 0-4:", json.dumps(fit(data, pairs, index), indent=1))
    result = report(data, pairs, index, link_calibration(Engine().calibration).threshold_distances["1e-4"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
