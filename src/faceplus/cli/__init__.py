"""The ``faceplus`` command line: one entry point, a module per group of commands.

- :mod:`faceplus.cli.server`: ``serve``, ``keys``, ``migrate``
- :mod:`faceplus.cli.engine`: ``detect``, ``compare``
- :mod:`faceplus.cli.tools`: ``index``, ``cluster``, ``reembed``
- :mod:`faceplus.cli.evaluation`: ``eval ...``, ``calibrate``
- :mod:`faceplus.cli.operator`: ``operator-secret``

Each module imports only argparse-level code at the top; models, OpenCV, dlib and database drivers are imported
inside the commands that use them, so ``faceplus --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from faceplus.cli import engine, evaluation, operator, security, server, tools
from faceplus.settings import SettingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceplus", description="Self-hosted face recognition (Face++ compatible)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (server, engine, tools, evaluation, security, operator):
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingError as exc:  # a setting or location faceplus cannot use: say which, without a traceback
        print(f"faceplus: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
