"""A FairFace-format folder of chosen fairface-dev rows (symlinks and a labels.csv), for tests on a few real faces."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

FIELDS = ["file", "age_group", "gender", "race"]


def fairface_folder(
    source: Path, rows: list[dict[str, str]], folder: Path, extra: Iterable[dict[str, str]] = ()
) -> Path:
    """``folder`` holding a link to each row's image in ``source`` and their labels (then ``extra`` label rows)."""
    (folder / "images").mkdir(parents=True)
    for row in rows:
        (folder / row["file"]).symlink_to(source / row["file"])
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows(extra)
    return folder
