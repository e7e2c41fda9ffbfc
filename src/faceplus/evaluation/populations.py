"""Labelled face folders for false-accept rates by group (``faceplus eval far``): who is in them, by which labels.

Two label formats: UTKFace's file names (``age_gender_race_date.jpg``) and FairFace's ``labels.csv``
(``file,age_group,gender,race``). Neither has identity labels: each image is taken to be a different person.
Groups are every race the folder labels, men and women, and each race x gender.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

UTKFACE_RACES = ("white", "black", "asian", "indian", "others")
#: FairFace's seven groups, lower case, in the order tables print them.
FAIRFACE_RACES = ("white", "black", "east asian", "southeast asian", "indian", "middle eastern", "latino_hispanic")
GENDERS = ("male", "female")
#: What may be done with something fitted on each source (a cohort, thresholds), as the data's terms say.
TERMS = {
    "utkface": "UTKFace is for non-commercial research only",
    "fairface": "FairFace (Karkkainen and Joo, WACV 2021) is CC BY 4.0: it may ship, with attribution",
}


@dataclass(frozen=True)
class Person:
    """One labelled image: its path under the root, age (FairFace: its age group's lower bound), gender, race."""

    path: str
    age: int
    gender: str
    race: str


def parse_utkface_name(path: str) -> Person | None:
    """``age_gender_race_date.jpg[.chip.jpg]`` (gender 0 male 1 female; race 0-4); None if malformed."""
    parts = Path(path).name.split("_")
    try:
        age, gender, race = int(parts[0]), int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return None
    if gender not in (0, 1) or not 0 <= race < len(UTKFACE_RACES):
        return None
    return Person(path, age, GENDERS[gender], UTKFACE_RACES[race])


def utkface_people(root: Path) -> tuple[list[Person], int]:
    """Every image under ``root`` with UTKFace file-name labels, and how many names did not parse."""
    files = sorted(str(p.relative_to(root)) for p in Path(root).rglob("*.jpg"))
    people = [parse_utkface_name(f) for f in files]
    return [p for p in people if p is not None], sum(p is None for p in people)


def age_group_floor(group: str) -> int | None:
    """The youngest age of a FairFace age group: ``"20-29"`` -> 20, ``"more than 70"`` -> 70; None if unknown."""
    text = group.strip().lower()
    if text.startswith("more than "):
        text = text.removeprefix("more than ")
    head = text.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def fairface_people(root: Path) -> tuple[list[Person], int]:
    """The rows of ``root/labels.csv`` with known labels (each row's age: its group's lower bound), and how many
    rows were not (an unknown age group, gender or race)."""
    people, malformed = [], 0
    with (Path(root) / "labels.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            age, gender = age_group_floor(row.get("age_group") or ""), (row.get("gender") or "").strip().lower()
            race = (row.get("race") or "").strip().lower()
            if age is None or gender not in GENDERS or race not in FAIRFACE_RACES or not row.get("file"):
                malformed += 1
                continue
            people.append(Person(row["file"], age, gender, race))
    return people, malformed


def source_kind(root: Path) -> str:
    """``fairface`` for a folder whose ``labels.csv`` has FairFace's ``age_group`` column, else ``utkface``."""
    labels = Path(root) / "labels.csv"
    if labels.is_file():
        with labels.open(newline="") as f:
            if "age_group" in (next(csv.reader(f), None) or []):
                return "fairface"
    return "utkface"


def labelled_people(root: Path) -> tuple[list[Person], int, str]:
    """The folder's labelled images, how many labels did not parse, and which format it is (:func:`source_kind`)."""
    kind = source_kind(root)
    people, malformed = fairface_people(root) if kind == "fairface" else utkface_people(root)
    return people, malformed, kind


T = TypeVar("T")


def spread(items: Sequence[T], limit: int | None) -> list[T]:
    """At most ``limit`` of ``items``, evenly spaced through them (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, max(limit, 0)).round().astype(int)]


def _races(people: list[Person]) -> list[str]:
    """The races present, in the order of the label set they come from (any other: alphabetical, after)."""
    present = {p.race for p in people}
    order = next((races for races in (FAIRFACE_RACES, UTKFACE_RACES) if present <= set(races)), UTKFACE_RACES)
    known = [r for r in order if r in present]
    return known + sorted(present - set(known))


def _plural(gender: str) -> str:
    return "women" if gender == "female" else "men"


def groups(people: list[Person]) -> list[tuple[str, np.ndarray]]:
    """all, each race, each gender, each race x gender: (name, boolean mask over ``people``)."""
    race = np.array([p.race for p in people])
    gender = np.array([p.gender for p in people])
    races = _races(people)
    out = [("all", np.ones(len(people), bool))]
    out += [(r, race == r) for r in races]
    out += [(_plural(g), gender == g) for g in GENDERS]
    out += [(f"{r} {_plural(g)}", (race == r) & (gender == g)) for r in races for g in GENDERS]
    return out


def is_race_gender(group: str) -> bool:
    """Whether a group name from :func:`groups` is one race x gender (``"east asian women"``)."""
    return group.endswith((" men", " women"))
