"""Server commands: ``serve``, ``keys create|list|revoke`` and ``migrate``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from faceplus.settings import ServerSettings

if TYPE_CHECKING:
    from faceplus.store import Store


def configured_store(data: Path | None) -> Store:
    """The store ``serve`` would use: $FACEPLUS_DATABASE_URL when set, else the data folder (every command that
    touches stored data opens it this way, so the tools work on both backends)."""
    from faceplus.store.factory import open_store

    return open_store(ServerSettings.from_env(data_dir=data))


def where(settings: ServerSettings) -> str:
    """Where the data is, for people: the database (without its password) or the data folder."""
    if settings.database_url:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(settings.database_url)
        return f"database: postgresql://{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
    return f"data folder: {settings.data_dir}"


def calibration_line(settings: ServerSettings, calibrated_on: str) -> str:
    """Which thresholds compare and search will use, and where they come from (also in ``GET /readyz``)."""
    from faceplus.calibration import calibration_source

    source = calibration_source(settings.engine.compare_calibration, settings.engine.embedder, settings.data_dir)
    how = {
        "data folder": "this data folder's, from faceplus calibrate",
        "shipped": "shipped; faceplus calibrate writes your own to the data folder",
    }.get(source.origin, source.origin)
    return f"calibration: {source.path} ({how}; measured on {calibrated_on})"


def cmd_migrate(args: argparse.Namespace) -> int:
    from faceplus.store.factory import open_store
    from faceplus.store.migrate import MigrationError, migrate

    if str(args.source) == str(args.target):
        print("--from and --to must differ", file=sys.stderr)
        return 2
    settings = ServerSettings.from_env()  # FACEPLUS_DATA_KEY opens an encrypted folder on either side
    source = open_store(settings, args.source)
    try:
        target = open_store(settings, args.target)
    except BaseException:
        source.close()
        raise
    try:
        report = migrate(source, target, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    except MigrationError as exc:
        print(f"migrate failed: {exc}", file=sys.stderr)
        return 1
    finally:
        source.close()
        target.close()
    print(
        f"migrated {report.faces} faces ({report.crops} kept crops), {report.facesets} FaceSets "
        f"({report.members} memberships, {report.ledger_entries} ledger entries), {report.keys} keys, "
        f"{report.tasks} tasks, {report.images} images, {report.albums} FaceAlbums ({report.album_faces} faces), "
        f"{report.audit_entries} audit entries"
    )
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from faceplus.api.auth import new_key

    store = configured_store(args.data_dir)
    record, secret = new_key(name=args.name or "")
    store.keys.add(record)
    store.close()
    print(f"api_key:    {record.api_key}")
    print(f"api_secret: {secret}")
    print("The secret is stored hashed and cannot be shown again.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    store = configured_store(args.data_dir)
    keys = store.keys.all()
    store.close()
    if not keys:
        print("no keys; create one with: faceplus keys create")
    for key in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(key.created))
        state = "revoked " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(key.revoked)) if key.revoked else "live"
        print(f"{key.api_key}  created {created}  {state}" + (f"  {key.name}" if key.name else ""))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    store = configured_store(args.data_dir)
    ok = store.keys.revoke(args.key, time.time())
    store.close()
    if not ok:
        print(f"no live key {args.key}", file=sys.stderr)
        return 1
    print(f"revoked {args.key}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from faceplus.api import create_app
    from faceplus.api.http_server import serve
    from faceplus.engine import Engine
    from faceplus.workers import warm

    settings = ServerSettings.from_env(data_dir=args.data_dir).with_calibration_resolved()
    try:  # a calibration file or its cohort missing, unreadable or of another model: say so now, not at a compare
        calibration = Engine(settings.engine).calibration
        calibration.cohort()
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"FACEPLUS_COMPARE_CALIBRATION={settings.engine.compare_calibration}: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)  # its engine workers load their models at startup, before the first request
    if settings.engine_workers <= 0:
        warm(app.state.ctx.engine)  # inline engine: load the models now rather than on the first request
    base = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    print(f"faceplus Face++ v3 API on {base}/facepp/v3/  (docs: {base}/docs)", flush=True)
    print(f"web console: {base}/", flush=True)
    print(where(settings), flush=True)
    print(calibration_line(settings, calibration.calibrated_on), flush=True)
    data_flag = f" --data-dir {settings.data_dir}" if args.data_dir else ""
    print(f"create a key with: faceplus keys create{data_flag}", flush=True)
    return serve(app, args.host, args.port, args.log_level, settings)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve``, ``keys`` and ``migrate`` to the ``faceplus`` command line."""
    p = subparsers.add_parser("serve", help="serve the Face++ v3 API over HTTP")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR or per-user)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)

    keys = subparsers.add_parser("keys", help="create, list and revoke API keys").add_subparsers(
        dest="keys_command", required=True
    )
    for name, func, helptext in (
        ("create", cmd_keys_create, "create a key and print its api_key and api_secret"),
        ("list", cmd_keys_list, "list keys"),
        ("revoke", cmd_keys_revoke, "revoke a key"),
    ):
        p = keys.add_parser(name, help=helptext)
        p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR)")
        if name == "create":
            p.add_argument("--name", default="", help="a label for the key")
        if name == "revoke":
            p.add_argument("key", help="the api_key to revoke")
        p.set_defaults(func=func)

    p = subparsers.add_parser(
        "migrate", help="copy everything (faces, crops, FaceSets, albums, keys, tasks, audit) between stores"
    )
    p.add_argument("--from", dest="source", required=True, help="a data folder or postgresql://... URL")
    p.add_argument("--to", dest="target", required=True, help="an empty data folder or postgresql://... database")
    p.set_defaults(func=cmd_migrate)
