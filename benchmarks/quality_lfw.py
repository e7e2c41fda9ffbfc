"""Does ``facequality`` predict matching? Evidence on lfw-dev pairs.

For every image of ``pairs-dev.txt`` the engine finds the face nearest the centre (as the LFW eval
does), embeds it and scores its Face++ ``facequality``. Pairs are binned by the *lower* quality of
their two faces; per bin we report the mean distance of same-person pairs and the accuracy at one
threshold chosen on all pairs (LFW's 10-fold protocol on the whole set is reported too). If the score
means anything, low-quality bins show larger same-person distances and lower accuracy.

    uv run python benchmarks/quality_lfw.py [--folds 10] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceplus.attributes import FaceAnalyzer
from faceplus.engine import Engine, NoFaceFound
from faceplus.evaluation.lfw import read_pairs, ten_fold

BINS = ((0.0, 50.0), (50.0, 70.1), (70.1, 85.0), (85.0, 100.01))


def measure(root: Path, images: list[str]) -> dict[str, tuple[np.ndarray, float]]:
    """Embedding and facequality per image (NaN embedding where no face is found)."""
    engine, analyzer = Engine(), FaceAnalyzer()
    out: dict[str, tuple[np.ndarray, float]] = {}
    start = time.time()
    for k, rel in enumerate(images, 1):
        decoded = engine.load(root / rel)
        try:
            face = engine.main_face(decoded, prefer="center")
        except NoFaceFound:
            out[rel] = (np.full(128, np.nan), float("nan"))
            continue
        analyzer.analyze(decoded.rgb, face, ["facequality"])
        assert face.embedding is not None
        out[rel] = (face.embedding, face.attributes["facequality"]["value"])
        if k % 250 == 0:
            print(f"  {k}/{len(images)} images, {time.time() - start:.0f} s", flush=True)
    return out


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    candidates = np.unique(distances)
    accuracy = [np.mean((distances <= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--folds", type=int, default=10, help="use the first N folds (fewer = faster)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--cache", type=Path, help="reuse/save per-image measurements (.npz) here")
    args = parser.parse_args()
    root = args.data / "lfw-dev"
    pairs = [p for p in read_pairs(root / "pairs-dev.txt") if p.fold < args.folds]
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    print(f"{len(pairs)} pairs, {len(images)} images")
    if args.cache and args.cache.exists():
        saved = np.load(args.cache)
        found = {rel: (saved["emb"][i], float(saved["quality"][i])) for i, rel in enumerate(saved["images"])}
    else:
        found = measure(root, images)
        if args.cache:
            np.savez(
                args.cache,
                images=np.array(images),
                emb=np.array([found[r][0] for r in images]),
                quality=np.array([found[r][1] for r in images]),
            )
    emb = {rel: v[0] for rel, v in found.items()}
    qual = {rel: v[1] for rel, v in found.items()}
    ok = [p for p in pairs if not (np.isnan(emb[p.image1]).any() or np.isnan(emb[p.image2]).any())]
    dist = np.array([np.linalg.norm(emb[p.image1] - emb[p.image2]) for p in ok])
    same = np.array([p.same for p in ok])
    low = np.array([min(qual[p.image1], qual[p.image2]) for p in ok])
    folds = np.array([p.fold for p in ok])
    threshold = best_threshold(dist, same)
    report: dict = {
        "pairs": len(pairs),
        "pairs_with_faces": len(ok),
        "threshold": threshold,
        "ten_fold_accuracy_all": float(np.mean(ten_fold(-dist, same, folds))),
        "bins": [],
    }
    print(f"pairs with both faces: {len(ok)}/{len(pairs)}; L2 threshold on all pairs {threshold:.3f}")
    print("min facequality  pairs  same  same-dist(mean)  diff-dist(mean)  accuracy  errors  FRR     FAR")
    for lo, hi in BINS:
        m = (low >= lo) & (low < hi)
        if not m.any():
            continue
        correct = (dist[m] <= threshold) == same[m]
        row = {
            "bin": [lo, min(hi, 100.0)],
            "pairs": int(m.sum()),
            "same_pairs": int(same[m].sum()),
            "same_distance_mean": float(dist[m & same].mean()) if (m & same).any() else None,
            "different_distance_mean": float(dist[m & ~same].mean()) if (m & ~same).any() else None,
            "accuracy": float(correct.mean()),
            "false_reject_rate": float(np.mean(dist[m & same] > threshold)) if (m & same).any() else None,
            "false_accept_rate": float(np.mean(dist[m & ~same] <= threshold)) if (m & ~same).any() else None,
            "errors": int((~correct).sum()),
        }
        report["bins"].append(row)
        sd, dd = row["same_distance_mean"], row["different_distance_mean"]
        print(
            f"{lo:5.1f}-{min(hi, 100):5.1f}      {row['pairs']:5d}  {row['same_pairs']:4d}  "
            f"{sd if sd is None else round(sd, 3)!s:>15}  {dd if dd is None else round(dd, 3)!s:>15}  "
            f"{row['accuracy']:8.4f}  {row['errors']:6d}  {row['false_reject_rate'] or 0:.4f}  "
            f"{row['false_accept_rate'] or 0:.4f}"
        )
    # the same-person distance against each face's quality (Spearman rank correlation)
    qs = np.array([min(qual[p.image1], qual[p.image2]) for p in ok])[same]
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    report["spearman_same_distance_vs_min_quality"] = float(np.corrcoef(ranks(qs), ranks(dist[same]))[0, 1])
    print(f"Spearman(same-person distance, min quality) = {report['spearman_same_distance_vs_min_quality']:.3f}")
    print(f"10-fold accuracy over all pairs: {report['ten_fold_accuracy_all']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
