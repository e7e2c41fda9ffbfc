"""Engine commands: ``detect`` and ``compare`` on image files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.errors import FaceplusError

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


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
