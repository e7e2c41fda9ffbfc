"""``faceplus erase`` and ``faceplus audit``: erasure and the audit trail from the operator's shell (issue 14).

Both work on the store directly (the data folder, or ``FACEPLUS_DATABASE_URL``), while a server runs or not.
A running embedded server notices an erasure at its next search of an affected FaceSet (the FaceSet's version
moved on, so its in-memory index reloads without the erased faces).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path


def _store(data: Path | None):
    from faceplus.settings import ServerSettings
    from faceplus.store.factory import open_store

    return open_store(ServerSettings.from_env(data_dir=data))


def cmd_erase(args: argparse.Namespace) -> int:
    from faceplus.store.security import ERASE_TABLES, AuditEntry

    store = _store(args.data_dir)
    try:
        tokens = [args.face_token] if args.face_token else []
        users = [args.user_id] if args.user_id else []
        result = store.erase_faces(args.api_key, tokens, users)
        if result.erased:
            store.scrub(ERASE_TABLES)  # before reporting: the bytes are gone from the data folder when we say so
        ids = {"face_tokens": result.erased, "faceset_tokens": sorted({f[1] for f in result.facesets})}
        if users:
            ids["user_ids"] = users
        store.add_audit(
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
        entries = store.audit_entries(since=since, api_key=args.api_key, limit=args.limit)
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


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``erase`` and ``audit`` to the ``faceplus`` command line."""
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


def main() -> None:  # pragma: no cover - convenience: python -m faceplus.cli.security
    parser = argparse.ArgumentParser(prog="faceplus")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    sys.exit(int(args.func(args) or 0))
