"""The Face++ v3 server's settings and its ``serve`` / ``keys`` commands.

Every setting has a Face++-like default and a ``FACEPLUS_*`` environment variable; docs/API.md lists them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from faceplus.config import Settings, data_dir


def _env_value(name: str, default: Any) -> Any:
    raw = os.environ.get(f"FACEPLUS_{name.upper()}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() not in ("0", "false", "no", "off", "")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw


@dataclass(frozen=True)
class ServerSettings:
    """Limits and switches of the HTTP server (the engine's own settings ride along in ``engine``)."""

    data_dir: Path = field(default_factory=data_dir)
    engine: Settings = field(default_factory=Settings)
    #: Largest request body (413 beyond it): two 2 MB images sent as base64 fit.
    max_body_bytes: int = 8 * 1024 * 1024
    #: Requests of one api_key in flight at once in this process (Face++'s concurrency cap); past it a request is
    #: refused at once with 403 CONCURRENCY_LIMIT_EXCEEDED. A client sending one call at a time is never refused.
    max_in_flight_per_key: int = 16
    #: Optional requests-per-second cap per api_key (token bucket, burst = one second's worth); 0 (default): off.
    rate_limit: float = 0.0
    #: Failed sign-ins allowed per api_key and per client address within ``auth_failure_window_s``; past either,
    #: 403 CONCURRENCY_LIMIT_EXCEEDED until the window moves on (0 turns that limit off). docs/SECURITY.md.
    auth_max_failures: int = 10
    auth_max_failures_per_address: int = 30
    auth_failure_window_s: float = 60.0
    #: Face tokens lapse this long after detection unless they are in a FaceSet (Face++: 72 h).
    face_token_ttl_s: float = 72 * 3600.0
    sweep_interval_s: float = 600.0
    #: Keep uploaded images (so face/analyze can recompute); off by default: no raw image is stored.
    store_images: bool = False
    #: Keep each face token's face region (a lossless crop, deleted with the token) so face/analyze and
    #: thousandlandmark can compute anything for it later; off: they answer 400 FACE_NOT_ANALYZABLE for what
    #: detect did not compute. docs/API.md.
    keep_face_crops: bool = True
    faceset_max_faces: int = 1_000_000
    max_facesets_per_key: int = 10_000
    addface_max_tokens: int = 5
    removeface_max_tokens: int = 1000
    analyze_max_tokens: int = 5
    getdetail_page: int = 100
    getfacesets_page: int = 100
    #: Detect computes landmarks/attributes for this many largest faces unless calculate_all=1 (Face++: 5).
    attribute_faces: int = 5
    #: Detect, compare and search drop faces smaller (box's short side) than this or than the image's short side
    #: over the divisor, whichever is larger (Face++: 48 px and 1/48); 0 turns a rule off. Engine: its own min_face.
    detect_min_face: int = 48
    detect_min_face_divisor: int = 48
    #: image_url: total download time, byte cap (defaults to the image limit), redirects followed.
    url_timeout_s: float = 10.0
    url_max_redirects: int = 3
    #: Allow image_url to loopback/private/link-local/reserved addresses (off: SSRF protection).
    allow_private_urls: bool = False
    #: FaceSets larger than this are searched with HNSW (candidates re-ranked exactly).
    hnsw_threshold: int = 50_000
    hnsw_ef_search: int = 64
    task_queue_size: int = 100
    #: Faces one FaceAlbum may hold (Face++: 10,000); an addimage past it is refused with FACEALBUM_QUOTA_EXCEEDED.
    facealbum_max_faces: int = 10_000
    #: ``postgresql://user:pass@host:port/db``: run on PostgreSQL + pgvector (shared by any number of workers)
    #: instead of SQLite in ``data_dir``. docs/DEPLOY.md.
    database_url: str = ""
    #: PostgreSQL connections per worker process.
    db_pool_size: int = 10
    #: PostgreSQL: FaceSets with at least this many faces get their own HNSW index (exact search below it).
    db_hnsw_threshold: int = 20_000
    #: PostgreSQL: hnsw.ef_search for those FaceSets (candidates are re-ranked exactly).
    db_ef_search: int = 200
    #: PostgreSQL: most ``maintenance_work_mem`` (MB) an HNSW build may take; it is sized to the FaceSet's graph
    #: (about 1.3 GB for 1M faces) because a build that outgrows it runs many times slower.
    db_index_memory_mb: int = 2048
    #: Shared stores: how often a worker takes over lapsed tasks and builds due indexes.
    maintain_interval_s: float = 30.0
    #: Engine worker processes (detection, embedding, analysis run there, never in the process serving HTTP);
    #: default one per core. 0 runs the engine inline in the server process, one call at a time (tests, debugging).
    engine_workers: int = os.cpu_count() or 1
    #: How long an engine call waits for a free worker, and how many may wait, before 403 CONCURRENCY_LIMIT_EXCEEDED.
    engine_queue_timeout_s: float = 10.0
    engine_max_waiting: int = 64
    #: Hard limit on one engine call (a backstop; detection has its own budget): the worker is replaced.
    engine_call_timeout_s: float = 60.0
    #: A worker whose resident memory passes this after a call is replaced.
    engine_worker_max_rss_mb: int = 3072
    #: Liveness (docs/LIVENESS.md): default biz_token lifetime, frames measured per verify, and the video's caps.
    liveness_token_ttl_s: float = 3600.0
    liveness_max_frames: int = 60
    liveness_max_video_bytes: int = 8 * 1024 * 1024
    liveness_max_video_s: float = 30.0

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerSettings:
        """Defaults, then ``FACEPLUS_<NAME>`` variables, then explicit ``overrides`` (None values ignored)."""
        values: dict[str, Any] = {"engine": Settings.from_env(), "data_dir": data_dir()}
        for f in fields(cls):
            if f.name in ("engine", "data_dir"):
                continue
            values[f.name] = _env_value(f.name, f.default)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


# -- commands -------------------------------------------------------------------------------------
def _store(data: Path | None):
    """The server's store: $FACEPLUS_DATABASE_URL when set, else the data folder."""
    from faceplus.store.factory import open_store

    return open_store(ServerSettings.from_env(data_dir=data))


def _where(settings: ServerSettings) -> str:
    if settings.database_url:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(settings.database_url)
        return f"database: postgresql://{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
    return f"data folder: {settings.data_dir}"


def cmd_migrate(args: argparse.Namespace) -> int:
    from faceplus.store.factory import open_location
    from faceplus.store.migrate import MigrationError, migrate

    if str(args.source) == str(args.target):
        print("--from and --to must differ", file=sys.stderr)
        return 2
    source, target = open_location(args.source), open_location(args.target)
    try:
        report = migrate(source, target, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    except MigrationError as exc:
        print(f"migrate failed: {exc}", file=sys.stderr)
        return 1
    finally:
        source.close()
        target.close()
    print(
        f"migrated {report.faces} faces, {report.facesets} FaceSets ({report.members} memberships), "
        f"{report.keys} keys, {report.tasks} tasks, {report.images} images"
    )
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from faceplus.api.auth import new_key

    store = _store(args.data_dir)
    record, secret = new_key(name=args.name or "")
    store.add_key(record)
    store.close()
    print(f"api_key:    {record.api_key}")
    print(f"api_secret: {secret}")
    print("The secret is stored hashed and cannot be shown again.", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    store = _store(args.data_dir)
    keys = store.list_keys()
    store.close()
    if not keys:
        print("no keys; create one with: faceplus keys create")
    for key in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(key.created))
        state = "revoked " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(key.revoked)) if key.revoked else "live"
        print(f"{key.api_key}  created {created}  {state}" + (f"  {key.name}" if key.name else ""))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    store = _store(args.data_dir)
    ok = store.revoke_key(args.key, time.time())
    store.close()
    if not ok:
        print(f"no live key {args.key}", file=sys.stderr)
        return 1
    print(f"revoked {args.key}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from faceplus.api import create_app
    from faceplus.workers import warm

    settings = ServerSettings.from_env(data_dir=args.data_dir)
    app = create_app(settings)  # its engine workers load their models at startup, before the first request
    if settings.engine_workers <= 0:
        warm(app.state.ctx.engine)  # inline engine: load the models now rather than on the first request
    where = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    print(f"faceplus Face++ v3 API on {where}/facepp/v3/  (docs: {where}/docs)", flush=True)
    print(f"web console: {where}/", flush=True)
    print(_where(settings), flush=True)
    data_flag = f" --data-dir {settings.data_dir}" if args.data_dir else ""
    print(f"create a key with: faceplus keys create{data_flag}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_server_commands(subparsers: argparse._SubParsersAction) -> None:
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
        "migrate", help="copy all faces, FaceSets, keys and tasks between a data folder and PostgreSQL"
    )
    p.add_argument("--from", dest="source", required=True, help="a data folder or postgresql://... URL")
    p.add_argument("--to", dest="target", required=True, help="an empty data folder or postgresql://... database")
    p.set_defaults(func=cmd_migrate)


def main(argv: list[str] | None = None) -> int:
    """``python -m faceplus.server serve|keys ...`` (the same commands as ``faceplus serve|keys``)."""
    parser = argparse.ArgumentParser(prog="faceplus")
    add_server_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
