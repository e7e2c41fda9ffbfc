"""The ``faceplus`` command line.

Engine commands (detect, compare, eval, calibrate) live here; ``serve``/``keys``/``migrate`` come from
:mod:`faceplus.server` and ``index``/``cluster`` from :mod:`faceplus.tools`. Heavy imports happen inside
the commands, so ``faceplus --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.config import DetectionSettings
from faceplus.detection import DETECTORS
from faceplus.errors import FaceplusError
from faceplus.server import add_server_commands
from faceplus.tools import add_tool_commands

if TYPE_CHECKING:
    from faceplus.engine import Engine


def _engine() -> Engine:
    from faceplus.engine import Engine

    return Engine()


def cmd_detect(args: argparse.Namespace) -> int:
    from faceplus.attributes import SUPPORTED_ATTRIBUTES
    from faceplus.drawing import draw_faces, save_rgb

    engine = _engine()
    status = 0
    results = []
    if args.attributes == "all":
        args.attributes = list(SUPPORTED_ATTRIBUTES)
    for i, path in enumerate(args.images):
        try:
            decoded = engine.load(path)
            faces = engine.detect(decoded, embed=args.embedding, attributes=args.attributes, landmark=args.landmark)
        except FaceplusError as exc:
            print(f"{path}: {exc.error_message}: {exc}", file=sys.stderr)
            status = 2
            if exc.param == "return_attributes":
                break
            continue
        results.append(
            {
                "image": str(path),
                "width": decoded.width,
                "height": decoded.height,
                "face_num": len(faces),
                "faces": [f.to_dict() for f in faces],
            }
        )
        if not args.json:
            print(f"{path}: {len(faces)} face(s)")
            for n, f in enumerate(faces, 1):
                b = f.box
                print(
                    f"  {n}: left={b.left} top={b.top} width={b.width} height={b.height} "
                    f"score={f.score:.2f} ({f.detector})"
                )
                for name, value in f.attributes.items():
                    print(f"     {name}: {json.dumps(value)}")
        if args.draw:
            out = Path(args.draw)
            if len(args.images) > 1:
                out = out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
            save_rgb(draw_faces(decoded.rgb, faces), out)
            if not args.json:
                print(f"  drawn to {out}")
    if args.json:
        print(json.dumps(results if len(results) != 1 else results[0], indent=2))
    return status


def cmd_compare(args: argparse.Namespace) -> int:
    from faceplus.engine import NoFaceFound

    engine = _engine()
    try:
        match = engine.compare(args.image1, args.image2)
    except NoFaceFound as exc:
        print(f"no face found: {exc}", file=sys.stderr)
        return 1
    except FaceplusError as exc:
        print(exc.error_message, exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**match.to_facepp(), "distance": round(match.distance, 4)}, indent=2))
    else:
        verdict = "same person" if match.is_same_person("1e-4") else "different people"
        print(f"confidence {match.confidence:.2f} (distance {match.distance:.3f}); thresholds {match.thresholds}")
        print(f"{verdict} at a false-accept rate of 1e-4")
    return 0


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    from faceplus.calibration import default_calibration
    from faceplus.evaluation.folder_embeddings import embed_folder
    from faceplus.evaluation.lfw import evaluate, read_pairs

    pairs = read_pairs(args.pairs)
    images = sorted({p.image1 for p in pairs} | {p.image2 for p in pairs})
    start = time.perf_counter()
    embeddings = embed_folder(Path(args.root), images, workers=args.workers, cache=args.cache, detector=args.detector)
    print(f"embedded {len(images)} images in {time.perf_counter() - start:.0f} s")
    calibration = default_calibration()
    detectors: dict[str, int] = {}
    for d in embeddings.detector:
        detectors[d or "none"] = detectors.get(d or "none", 0) + 1
    print("faces found by detector:", ", ".join(f"{k}: {v}" for k, v in sorted(detectors.items())))
    index = embeddings.index()
    # Each step adds one thing to the one before; the last is the engine's default pipeline.
    primary = "hog1" if args.detector == "hog" else args.detector
    steps = [
        (
            f"{primary} only, 5-pt chip, no TTA",
            dict(alignment=5, flip_tta=False, normalize=False, fallback=False, primary=primary),
        ),
        ("+ detection fallback (other detectors)", dict(alignment=5, flip_tta=False, normalize=False)),
        ("+ flip TTA (mean of chip and mirrored chip)", dict(alignment=5, normalize=False)),
        ("+ unit-length embeddings", dict(alignment=5)),
        ("+ chip aligned on 68 points (engine default)", dict()),
    ]
    for n, (label, options) in enumerate(steps):
        vectors = embeddings.vectors(**options)
        by_path = {p: vectors[index[p]] for p in images}
        last = n == len(steps) - 1
        result = evaluate(pairs, by_path, calibration, scores_out=args.scores if last else None)
        print(f"{label}: {result.summary()}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from faceplus.evaluation.calibrate import calibrate, image_list
    from faceplus.evaluation.folder_embeddings import embed_folder

    root = Path(args.root)
    images = image_list(root)
    embeddings = embed_folder(root, images, workers=args.workers, cache=args.cache, detector=args.detector)
    info = {
        "command": "faceplus calibrate " + " ".join(sys.argv[2:]),
        "data": root.name,
        "embedder": "dlib-resnet-v1 (onnx), 68-pt chip, flip TTA, unit length",
        "date": time.strftime("%Y-%m-%d"),
    }
    run = calibrate(embeddings.paths, embeddings.vectors(), info, salts=args.splits)
    cal = run.calibration
    out = Path(args.out) if args.out else Path(str(resources.files("faceplus.data").joinpath("calibration.json")))
    cal.save(out)
    print(
        f"fit on {cal.info['genuine_pairs']} same-person and {cal.info['impostor_pairs']} impostor pairs "
        f"({cal.info['identities']} identities); curve midpoint {cal.midpoint:.4f}, scale {cal.scale:.4f}"
    )
    print(f"{'FAR':>6} {'distance':>9} {'confidence':>11}")
    for far, distance in cal.threshold_distances.items():
        print(f"{far:>6} {distance:9.4f} {cal.thresholds[far]:11.3f}")
    print("held-out check: fit on one half of the identities, false-accept rate / nominal on the other half")
    print(f"{'split':>7} {'pairs':>9} " + " ".join(f"{far:>6}" for far in cal.threshold_distances))
    for check in run.checks:
        ratios = " ".join(f"{check.ratio(far):6.2f}" for far in cal.threshold_distances)
        print(f"{check.split:>7} {check.impostor_pairs:9d} {ratios}")
    pooled = " ".join(f"{run.pooled_ratio(far):6.2f}" for far in cal.threshold_distances)
    print(f"{'pooled':>7} {sum(c.impostor_pairs for c in run.checks):9d} {pooled}")
    print(f"wrote {out}")
    return 0


def cmd_eval_attributes(args: argparse.Namespace) -> int:
    from faceplus.evaluation.attributes import evaluate_attributes, format_report

    if not args.utkface and not args.fer:
        print("give --utkface DIR and/or --fer DIR", file=sys.stderr)
        return 2
    print(format_report(evaluate_attributes(args.utkface, args.fer, limit=args.limit)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceplus", description="Self-hosted face recognition (Face++ compatible)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_server_commands(sub)
    add_tool_commands(sub)

    p = sub.add_parser("detect", help="find faces, landmarks and embeddings in images")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--draw", metavar="OUT.jpg", help="write the image with faces drawn")
    p.add_argument("--no-embedding", dest="embedding", action="store_false", help="skip the 128-d embedding")
    p.add_argument("--attributes", help="Face++ attributes, e.g. age,gender,emotion,headpose (or 'all')")
    p.add_argument("--landmark", type=int, choices=(0, 1, 2), default=0, help="Face++ named landmarks: 1=83, 2=106")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("compare", help="compare the largest face of two images")
    p.add_argument("image1", type=Path)
    p.add_argument("image2", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    primary = DetectionSettings.from_env().detector  # FACEPLUS_DETECTOR, as the engine itself reads it
    ev = sub.add_parser("eval", help="evaluate on a benchmark").add_subparsers(dest="benchmark", required=True)
    p = ev.add_parser("lfw", help="LFW 10-fold verification")
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--pairs", required=True, type=Path)
    p.add_argument("--scores", type=Path, help="write fold,same,confidence per pair to this CSV")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--cache", type=Path, help="reuse/store embeddings in this .npz")
    p.add_argument("--detector", choices=DETECTORS, default=primary, help="primary detector (default: %(default)s)")
    p.set_defaults(func=cmd_eval_lfw)

    p = ev.add_parser("attributes", help="age/gender on UTKFace, emotion on FER2013")
    p.add_argument("--utkface", type=Path, help="UTKFace folder with labels.csv")
    p.add_argument("--fer", type=Path, help="FER2013 folder with labels.csv")
    p.add_argument("--limit", type=int, help="evaluate only this many images of each set (spread evenly)")
    p.set_defaults(func=cmd_eval_attributes)

    p = sub.add_parser("calibrate", help="measure FAR thresholds on all cross-identity pairs of a folder")
    p.add_argument("--root", required=True, type=Path, help="folder of <identity>/<image>.jpg (e.g. lfw-dev)")
    p.add_argument("--out", type=Path, help="calibration file (default: the one shipped in the package)")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--cache", type=Path, help="reuse/store embeddings in this .npz")
    p.add_argument("--detector", choices=DETECTORS, default=primary, help="primary detector (default: %(default)s)")
    p.add_argument("--splits", type=int, default=6, help="identity splits for the held-out check")
    p.set_defaults(func=cmd_calibrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
