"""``faceplus operator-secret``: the secret that lets the web console's Keys page manage API keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceplus.settings import ServerSettings


def cmd_operator_secret(args: argparse.Namespace) -> int:
    from faceplus.operator import new_operator_secret, secret_file

    settings = ServerSettings.from_env(data_dir=args.data_dir)
    if args.off:
        secret_file(settings.data_dir).unlink(missing_ok=True)
        print("key management over HTTP is off (no operator secret)")
        return 0
    secret = new_operator_secret(settings.data_dir)
    print(f"operator_secret: {secret}")
    print(
        f"Stored hashed in {secret_file(settings.data_dir)}; it replaces any earlier one and cannot be shown again.",
        file=sys.stderr,
    )
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``operator-secret`` to the ``faceplus`` command line."""
    p = subparsers.add_parser(
        "operator-secret", help="make the secret the web console's Keys page asks for (or --off to remove it)"
    )
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default: $FACEPLUS_DATA_DIR)")
    p.add_argument("--off", action="store_true", help="remove the secret: no key management over HTTP")
    p.set_defaults(func=cmd_operator_secret)
