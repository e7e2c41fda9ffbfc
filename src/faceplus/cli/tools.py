"""People's tools: ``index`` (a photo folder into a FaceSet, resumable), ``cluster`` (faces by person) and
``reembed`` (stored faces to the engine's identity model, resumable)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.cli.interrupts import first_interrupt_only
from faceplus.cli.server import where
from faceplus.settings import LOCAL_TENANT

if TYPE_CHECKING:
    from faceplus.store import Store
    from faceplus.tools.reembed import ReembedReport


def _open_store(data_dir: Path | None) -> tuple[str, Store]:
    """The store ``serve`` uses (PostgreSQL when $FACEPLUS_DATABASE_URL is set) and where it is, for the summary.

    An older version's ledger file in the data folder is moved into the store on the way.
    """
    from faceplus.settings import ServerSettings
    from faceplus.store.factory import open_store
    from faceplus.tools.indexing import Ledger

    settings = ServerSettings.from_env(data_dir=data_dir)
    store = open_store(settings)
    if not settings.database_url:
        Ledger(store).import_legacy(settings.data_dir)
    return where(settings), store


def _tenant(store: Store, api_key: str | None) -> str:
    """The tenant to work in: a live API key of this data folder, or the local tenant."""
    if not api_key:
        return LOCAL_TENANT
    record = store.keys.get(api_key)
    if record is None or record.revoked:
        raise SystemExit(f"no live api key {api_key} in this store (faceplus keys list)")
    return api_key


def _excluded(patterns: list[str] | None, list_file: Path | None) -> list[str]:
    out = list(patterns or [])
    if list_file is not None:
        out += [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    return out


def cmd_index(args: argparse.Namespace) -> int:
    from faceplus.engine import Engine
    from faceplus.settings import ServerSettings
    from faceplus.tools.indexing import Indexer, Ledger

    root = Path(args.dir)
    if not root.is_dir():
        print(f"not a folder: {root}", file=sys.stderr)
        return 2
    location, store = _open_store(args.data_dir)
    ledger = Ledger(store)
    interrupted = False
    try:
        tenant = _tenant(store, args.api_key)
        indexer = Indexer(
            store,
            ledger,
            tenant,
            args.faceset,
            max_faces=ServerSettings.from_env().faceset_max_faces,
            user_id_from_folder=args.user_id_from_folder,
        )
        try:
            with first_interrupt_only():  # a second Ctrl-C (uv run forwards one) must not break the clean-up
                indexer.run(
                    root,
                    Engine(),
                    workers=args.workers,
                    progress=not args.quiet,
                    max_files=args.max_files,
                    exclude=_excluded(args.exclude, args.exclude_from),
                )
        except KeyboardInterrupt:
            interrupted = True  # run() committed every finished file before this reached us
    finally:
        store.close()
    summary = indexer.summary
    print(f"FaceSet {args.faceset} (faceset_token {summary.faceset_token}, tenant {tenant}); {location}")
    for line in summary.lines():
        print(line)
    if interrupted:
        print("interrupted; what was finished is stored, rerun the same command to go on", file=sys.stderr)
        return 130
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    return run_cluster_command(args)


def cmd_reembed(args: argparse.Namespace) -> int:
    from faceplus.engine import Engine
    from faceplus.tools.reembed import Reembedder

    location, store = _open_store(args.data_dir)
    reembedder = None
    interrupted = False
    try:
        reembedder = Reembedder(store, Engine(), batch=args.batch, progress=not args.quiet, redetect=args.redetect)
        print(f"re-embedding stored faces with {reembedder.target}; {location}")
        try:
            reembedder.run()
        except KeyboardInterrupt:
            interrupted = True  # every finished batch is committed
    finally:
        store.close()
    report = reembedder.report
    for line in report_lines(report):
        print(line)
    if interrupted:
        print("interrupted; finished batches are stored, rerun the same command to go on", file=sys.stderr)
        return 130
    return 1 if report.failed else 0


def report_lines(report: ReembedReport) -> list[str]:
    lines = [
        f"{report.reembedded} faces re-embedded in {report.seconds:.1f} s ({report.rate:.1f} faces/s)"
        + (f"; {report.redetected} found again by detection" if report.redetected else ""),
        f"FaceSets switched to {report.target}: {len(report.switched)}; not switched: {len(report.kept)}",
    ]
    lines += [f"  not switched (no member could be re-embedded, or one failed): {t} {fs}" for t, fs in report.kept]
    if report.failed:
        lines.append(
            f"faces that could not be re-embedded from their crop (they keep their model): {len(report.failed)}"
        )
        lines += [f"  {f.tenant} {f.face_token} {f.model}: {why}" for f, why in report.failed]
    if report.without_crop:
        lines.append(f"faces without a kept crop (they keep their model until re-enrolled): {len(report.without_crop)}")
        lines += [f"  {f.tenant} {f.face_token} {f.model}" for f in report.without_crop]
    for model, n in sorted(report.album_faces.items()):
        lines.append(f"FaceAlbum faces of {model} (no crop kept: add their photos again): {n}")
    return lines


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``index`` and ``cluster`` to the ``faceplus`` command line."""
    workers = max(1, min(4, os.cpu_count() or 1))
    p = subparsers.add_parser("index", help="detect and embed every face in a folder and add them to a FaceSet")
    p.add_argument("dir", type=Path, help="folder of photos (walked recursively)")
    p.add_argument("--faceset", required=True, help="outer_id of the FaceSet (created if absent)")
    p.add_argument("--workers", type=int, default=workers, help=f"engine processes (default {workers})")
    p.add_argument("--user-id-from-folder", action="store_true", help="user_id = name of the photo's folder")
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR or per-user)")
    p.add_argument("--api-key", default=os.environ.get("FACEPLUS_API_KEY"), help=f"tenant (default: '{LOCAL_TENANT}')")
    p.add_argument("--max-files", type=int, default=None, help="stop after this many new files (resumable)")
    p.add_argument("--exclude", action="append", metavar="GLOB", help="leave out paths (relative to DIR) matching")
    p.add_argument("--exclude-from", type=Path, metavar="FILE", help="leave out the relative paths listed in FILE")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = subparsers.add_parser("cluster", help="group faces by person (no labels) and write a report")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("dir", nargs="?", type=Path, help="folder of photos to detect and cluster")
    src.add_argument("--faceset", help="cluster the faces of this FaceSet (outer_id) instead")
    p.add_argument("--out", type=Path, default=None, help="report folder (clusters.json, index.html)")
    p.add_argument("--set-user-ids", action="store_true", help="FaceSet mode: set each face's user_id to its cluster")
    p.add_argument("--eval", action="store_true", help="score against folder names (or user_ids) as the truth")
    p.add_argument("--min-per-person", type=int, default=2, help="--eval: keep people with this many faces")
    p.add_argument("--far", default=None, help="false-accept rate whose calibrated distance links faces")
    p.add_argument("--method", choices=("average", "components", "whispers"), default="average")
    p.add_argument("--min-size", type=int, default=1, help="report: hide clusters smaller than this")
    p.add_argument("--workers", type=int, default=workers)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--api-key", default=os.environ.get("FACEPLUS_API_KEY"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_cluster)

    p = subparsers.add_parser(
        "reembed", help="re-embed stored faces of another identity model from their kept crops (resumable)"
    )
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR or per-user)")
    p.add_argument("--batch", type=int, default=64, help="faces per committed batch (default 64)")
    p.add_argument(
        "--redetect",
        action="store_true",
        help="find each face again in its crop with the engine's detection (default: the stored landmarks)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_reembed)


def run_cluster_command(args: argparse.Namespace) -> int:
    from faceplus.calibration import compare_calibration
    from faceplus.engine import Engine
    from faceplus.settings import EngineSettings
    from faceplus.tools.clustering import (
        DEFAULT_FAR,
        eval_subset,
        faces_from_faceset,
        faces_from_folder,
        link_calibration,
        run_clustering,
        score_clusters,
        set_user_ids,
        write_report,
    )
    from faceplus.tools.indexing import Ledger

    far = args.far or DEFAULT_FAR
    engine_settings = EngineSettings.from_env()  # auto: the data folder's own calibration, as serve on it would use
    own = compare_calibration(engine_settings.compare_calibration, engine_settings.embedder, args.data_dir)
    calibration = link_calibration(own)
    if far not in calibration.threshold_distances:
        print(f"--far must be one of {', '.join(calibration.threshold_distances)}", file=sys.stderr)
        return 2
    store = tenant = None
    if args.faceset:
        _, store = _open_store(args.data_dir)
        tenant = _tenant(store, args.api_key)
        items, _ = faces_from_faceset(store, Ledger(store), tenant, args.faceset, Engine().model_id)
        source = f"FaceSet {args.faceset}"
    else:
        if args.set_user_ids:
            print("--set-user-ids needs --faceset (a folder's faces have no user_id to set)", file=sys.stderr)
            return 2
        items = faces_from_folder(Path(args.dir), Engine(), workers=args.workers, progress=not args.quiet)
        source = str(args.dir)
    try:
        if args.eval:
            items = eval_subset(items, args.min_per_person)
            print(f"evaluating on {source}: largest face of each image, people with {args.min_per_person}+ images")
        result = run_clustering(items, calibration, far, args.method)
        print(
            f"{len(items)} faces -> {len(result.groups())} clusters ({args.method} linkage at FAR {far}, "
            f"distance {result.threshold:.4f}) in {result.seconds:.1f} s"
        )
        if args.eval:
            scores = score_clusters(result.labels.tolist(), [it.truth for it in items])
            result.extra["eval"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in vars(scores).items()}
            for line in scores.lines():
                print(line)
        if args.out:
            write_report(result, Path(args.out), min_size=args.min_size)
            print(f"report: {Path(args.out) / 'clusters.json'} and {Path(args.out) / 'index.html'}")
        if args.set_user_ids and store is not None and tenant is not None:
            print(f"user_id set on {set_user_ids(store, tenant, result)} faces")
    finally:
        if store is not None:
            store.close()
    return 0 if not math.isnan(result.threshold) else 1
