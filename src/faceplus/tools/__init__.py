"""People's tools on top of the engine and the store: bulk indexing of photo folders and face clustering."""

from __future__ import annotations

import argparse


def add_tool_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``index`` and ``cluster`` to the ``faceplus`` command line (imported lazily: fast ``--help``)."""
    from faceplus.tools.cli import add_tool_commands as add

    add(subparsers)


__all__ = ["add_tool_commands"]
