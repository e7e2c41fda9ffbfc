"""``faceplus erase``, ``audit`` and ``rekey``: erasure, the audit trail and the data key from the operator's shell.

``erase`` and ``audit`` work on the store directly (the data folder, or ``FACEPLUS_DATABASE_URL``), while a server
runs or not; ``rekey`` works on the embedded store only, with the server stopped.
A running embedded server notices an erasure at its next search of an affected FaceSet (the FaceSet's version
moved on, so its in-memory index reloads without the erased faces).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faceplus.store import Store


def _store(data: Path | None) -> Store:
    from faceplus.settings import ServerSettings
    from faceplus.store.factory import open_store

    return open_store(ServerSettings.from_env(data_dir=data))


def cmd_erase(args: argparse.Namespace) -> int:
    from faceplus.store import ERASE_TABLES, AuditEntry

    store = _store(args.data_dir)
    try:
        tokens = [args.face_token] if args.face_token else []
        users = [args.user_id] if args.user_id else []
        result = store.erasure.erase(args.api_key, tokens, users)
        if result.erased:
            store.erasure.scrub(
                ERASE_TABLES
            )  # before reporting: the bytes are gone from the data folder when we say so
        ids = {"face_tokens": result.erased, "faceset_tokens": sorted({f[1] for f in result.facesets})}
        if users:
            ids["user_ids"] = users
        store.audit.add(
            AuditEntry(time.time(), args.api_key or "*", "cli:erase", ids, 200, "ok" if result.erased else "none")
        )
    finally:
        store.close()
    if not result.erased:
        print("nothing to erase: no such face token or user_id" + (" for this api_key" if args.api_key else ""))
        return 1
    print(
        f"erased {len(result.erased)} face(s) from {len(result.facesets)} FaceSet(s): {result.crops} crop(s), "
        f"{result.images} image(s), {result.tasks} task(s); storage scrubbed"
    )
    for token in result.erased:
        print(f"  {token}")
    return 0


def _since(value: str) -> float:
    """An ISO date/time (``2025-01-31``, ``2025-01-31T12:00``) or a Unix time."""
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()


def cmd_audit(args: argparse.Namespace) -> int:
    store = _store(args.data_dir)
    try:
        since = _since(args.since) if args.since else None
        entries = store.audit.entries(since=since, api_key=args.api_key, limit=args.limit)
    finally:
        store.close()
    for e in entries:
        when = datetime.fromtimestamp(e.time).isoformat(timespec="seconds")
        if args.json:
            print(
                json.dumps(
                    {
                        "time": e.time,
                        "api_key": e.api_key,
                        "route": e.route,
                        "object_ids": e.object_ids,
                        "status": e.status,
                        "result": e.result,
                    }
                )
            )
        else:
            ids = " ".join(f"{kind}={','.join(values)}" for kind, values in e.object_ids.items())
            print(f"{when}  {e.api_key}  {e.route}  {e.status} {e.result}  {ids}")
    return 0


def _zero_and_remove(folder: Path) -> int:
    """Overwrite every file under ``folder`` with zeros, then remove it (persisted search indexes hold vectors)."""
    removed = 0
    for file in sorted(folder.rglob("*"), reverse=True):
        if file.is_file() and not file.is_symlink():
            with open(file, "r+b") as f:
                f.write(b"\0" * file.stat().st_size)
                f.flush()
                os.fsync(f.fileno())
            file.unlink()
            removed += 1
        elif file.is_dir():
            file.rmdir()
    folder.rmdir()
    return removed


def cmd_rekey(args: argparse.Namespace) -> int:
    """Encrypt, re-encrypt or decrypt the embedded store's embeddings and crops; the server must be stopped."""
    from faceplus.settings import ServerSettings
    from faceplus.store.factory import open_store
    from faceplus.store.sqlite import SQLiteStore
    from faceplus.store.sqlite.cipher import DataCipher, DataKeyError, new_key_text, rekey

    settings = ServerSettings.from_env(data_dir=args.data_dir)
    if settings.database_url:
        print("faceplus rekey: the PostgreSQL store is not encrypted by faceplus (docs/SECURITY.md)", file=sys.stderr)
        return 2
    if args.decrypt:
        new_text = ""
    elif args.new_key == "generate":
        new_text = new_key_text()
    elif args.new_key == "-":
        new_text = sys.stdin.readline().strip()
    else:
        new_text = args.new_key
    try:
        new = DataCipher.from_setting(new_text) if new_text else None
        opened = open_store(settings, settings.data_dir)  # with the old key: FACEPLUS_DATA_KEY
    except DataKeyError as e:
        print(f"faceplus rekey: {e}", file=sys.stderr)
        return 2
    assert isinstance(opened, SQLiteStore)  # a data folder opens as the embedded store
    store = opened
    try:
        result = rekey(store.db.conn(), store.db.cipher, new)
        store.db.conn().execute("VACUUM")  # rewrite every page: no free page keeps an old value
        store.erasure.scrub()  # and the WAL's old page versions go too
    finally:
        store.close()
    index_files = settings.data_dir / "vector_index"
    removed = _zero_and_remove(index_files) if new is not None and index_files.is_dir() else 0
    counts = ", ".join(f"{table} {n}" for table, n in result.tables.items())
    state = "encrypted with the new key" if new is not None else "decrypted (stored in plaintext)"
    print(f"{result.values} value(s) {state} ({counts}); {removed} persisted index file(s) removed")
    if args.new_key == "generate":
        print(f"FACEPLUS_DATA_KEY={new_text}")
    print("Start the server with FACEPLUS_DATA_KEY set to the new key (unset with --decrypt).")
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``erase``, ``audit`` and ``rekey`` to the ``faceplus`` command line."""
    p = subparsers.add_parser(
        "erase", help="erase a face token, or every face of a user_id, immediately and completely (docs/SECURITY.md)"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--face-token", help="the face token to erase")
    which.add_argument("--user-id", help="erase every face carrying this user_id")
    p.add_argument("--api-key", help="only this tenant's faces (default: any tenant)")
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR)")
    p.set_defaults(func=cmd_erase)

    p = subparsers.add_parser("audit", help="print the audit trail: calls that created, changed or erased data")
    p.add_argument("--since", help="from this date/time (ISO 8601, local time) or Unix time on")
    p.add_argument("--api-key", help="only this key's calls")
    p.add_argument("--limit", type=int, default=10_000, help="at most this many entries (oldest first)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR)")
    p.set_defaults(func=cmd_audit)

    p = subparsers.add_parser(
        "rekey",
        help="encrypt the embedded store's embeddings and face crops, change their key, or decrypt them "
        "(stop the server first; the current key is FACEPLUS_DATA_KEY, empty when not encrypted)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--new-key",
        help="the new key: base64 of 32 bytes, '-' to read it from standard input, 'generate' for a new one",
    )
    which.add_argument("--decrypt", action="store_true", help="store the values in plaintext from now on")
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR)")
    p.set_defaults(func=cmd_rekey)


def main() -> None:  # pragma: no cover - convenience: python -m faceplus.cli.security
    parser = argparse.ArgumentParser(prog="faceplus")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    sys.exit(int(args.func(args) or 0))
