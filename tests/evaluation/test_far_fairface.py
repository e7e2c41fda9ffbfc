"""``faceplus eval far`` on FairFace (labels.csv), and the held-out cohort built from one half of it, on real faces."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from faceplus.cli import main
from faceplus.evaluation.far import Embedded, Population, Study, fit_cohort, load_population
from faceplus.evaluation.folder_embeddings import cache_path
from faceplus.evaluation.populations import FAIRFACE_RACES, age_group_floor, fairface_people, groups, spread

from .fairface_subset import fairface_folder

PER_RACE = 6  # adults of each of FairFace's seven groups: 42 images


@pytest.fixture(scope="module")
def fairface(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FairFace-format folder of a few dozen fairface-dev images: PER_RACE adults per race (both genders where
    there are), two children, and one row with an unknown race."""
    source = shared_data / "fairface-dev"
    if not (source / "labels.csv").is_file():
        pytest.skip(f"fairface-dev not found at {source}")
    with (source / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for race in sorted({r["race"] for r in rows}):
        adults = [r for r in rows if r["race"] == race and r["age_group"] not in ("0-2", "3-9", "10-19")]
        women = [r for r in adults if r["gender"].lower() == "female"]
        men = [r for r in adults if r not in women]
        chosen += spread(women, PER_RACE // 2) + spread(men, PER_RACE - PER_RACE // 2)
    chosen += [r for r in rows if r["age_group"] == "10-19"][:1] + [r for r in rows if r["age_group"] == "3-9"][:1]
    martian = {"file": chosen[0]["file"], "age_group": "20-29", "gender": "Male", "race": "Martian"}
    return fairface_folder(source, chosen, tmp_path_factory.mktemp("fairface"), [martian])


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embeddings cache for the module: each face is embedded once."""
    return tmp_path_factory.mktemp("cache") / "ff.npz"


def test_fairface_labels(fairface: Path) -> None:
    people, malformed = fairface_people(fairface)
    assert malformed == 1 and len(people) == 7 * PER_RACE + 2
    assert {p.race for p in people} == set(FAIRFACE_RACES) and {p.gender for p in people} == {"male", "female"}
    assert [age_group_floor(g) for g in ("0-2", "20-29", "more than 70", "adult")] == [0, 20, 70, None]
    assert sum(p.age >= 20 for p in people) == 7 * PER_RACE  # the two children are 3-9 and 10-19


def _table(out: str, title: str) -> dict[str, int]:
    """group -> impostor pairs of the markdown table printed under ``title``."""
    block = out.split(title, 1)[1].split("\n\n(*", 1)[0]
    return {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^\| ([^|]+?) \| ([\d,]+) \|", block, re.M)}


def test_eval_far_prints_fairface_groups_and_counts(fairface: Path, cache: Path, capsys) -> None:  # noqa: ANN001
    assert main(["eval", "far", "--root", str(fairface), "--min-age", "20", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    adults = 7 * PER_RACE
    assert f"{7 * PER_RACE + 2} images with fairface labels (1 did not parse); {adults} aged 20+" in out
    assert f"{adults} images: " in out  # only the adults are embedded
    # Which faces were found: the cache the command wrote (named after the identity model that made it).
    from faceplus.engine import Engine

    written = cache_path(cache, Engine().model_id, Engine().settings.detection.detector)
    embedded = Embedded.load(written, Engine().model_id)
    missed = int((~embedded.found).sum())
    assert f"{adults} images: {missed} with no face found" in out
    people = [p for p in fairface_people(fairface)[0] if p.age >= 20]
    by_path = {p.path: p for p in people}
    found = [by_path[path] for path, f in zip(embedded.paths, embedded.found, strict=True) if f]
    table = _table(out, f"on {fairface.name}:")
    races = [r for r in FAIRFACE_RACES if any(p.race == r for p in found)]
    expected = ["all", *races, "men", "women"]
    expected += [f"{r} {g}" for r in races for g in ("men", "women")]
    counted = {name: int(mask.sum()) for name, mask in groups(found)}
    expected = [g for g in expected if counted[g] >= 2]  # a group of one face has no pair: no row
    assert list(table) == expected
    assert table == {g: counted[g] * (counted[g] - 1) // 2 for g in expected}
    assert table["all"] == len(found) * (len(found) - 1) // 2


def test_the_cohort_of_one_half_holds_none_of_the_other(fairface: Path, cache: Path) -> None:
    population = load_population(fairface, 20, cache=cache)
    assert isinstance(population, Population) and len(population.people) >= 30
    halves = population.half
    assert 0 < halves.sum() < len(halves)  # a hash of the file name splits it
    empty = Study(population, np.zeros((0, 128), np.float32), np.array([], str))
    for half in (False, True):
        norm, labels = fit_cohort(empty, half, k=3, per_group=2)
        mine = set(population.labels[halves == half])
        theirs = set(population.labels[halves != half])
        assert set(labels) <= mine and not set(labels) & theirs
        # The vectors too: each cohort face is a face of this half, none is one of the other half.
        own = population.vectors[halves == half] / np.linalg.norm(population.vectors[halves == half], axis=1)[:, None]
        other = population.vectors[halves != half]
        assert np.abs(norm.vectors[:, None] - own[None]).max(2).min(1).max() < 1e-6
        assert np.linalg.norm(norm.vectors[:, None] - other[None], axis=2).min() > 0.05
        # At most per_group of each race x gender of the half.
        keys = [f"{p.race} {p.gender}" for p, h in zip(population.people, halves, strict=True) if h == half]
        assert len(labels) == sum(min(2, keys.count(k)) for k in set(keys))
