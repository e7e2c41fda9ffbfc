"""Thresholds from impostor pairs alone (``faceplus calibrate --groups``) and the shipped SFace calibration they made:
it rests on FairFace only (CC BY 4.0), and the command reproduces it from fairface-dev."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from faceplus.calibration import default_calibration, far_distance
from faceplus.cli import main
from faceplus.evaluation.far import half_split
from faceplus.evaluation.folder_embeddings import model_id_of
from faceplus.evaluation.impostor_fit import (
    FACEPP_CONFIDENCES,
    anchored_curve,
    balanced_distance,
    fit_groups,
    fit_tail,
)
from faceplus.evaluation.populations import TERMS, age_group_floor, spread

from .fairface_subset import fairface_folder

#: Research-only data sets the shipped default must not rest on (docs/MODELS.md, shared/data/README.md).
RESEARCH_ONLY = ("lfw", "utkface", "fer2013", "nuaa", "pascal", "voc")


def _impostor_distances(mean: float, spread_: float, n: int, seed: int) -> np.ndarray:
    """Distances of ``n`` unit-vector pairs whose cosine similarity is normal(mean, spread_)."""
    similarity = np.clip(np.random.default_rng(seed).normal(mean, spread_, n), -1, 1)
    return np.sqrt(2 - 2 * similarity)


@pytest.mark.parametrize("embedder", ["sface", "sface-int8"])
def test_shipped_sface_calibration_rests_on_fairface_only(embedder: str) -> None:
    shipped = default_calibration(embedder)
    info = shipped.info
    assert info["data"] == "fairface-dev" and info["genuine_pairs"] == 0
    assert "FairFace" in shipped.calibrated_on and "CC BY 4.0" in shipped.calibrated_on
    assert info["licence"] == TERMS["fairface"]
    assert info["command"].startswith("faceplus calibrate --groups ../shared/data/fairface-dev ")
    for field in ("data", "calibrated_on", "command", "method", "licence"):
        named = [name for name in RESEARCH_ONLY if name in info[field].lower()]
        assert not named, (field, named, info[field])
    assert info["model_id"] == model_id_of(embedder)  # fit for this model's own distances
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", info["date"])


@pytest.mark.parametrize("embedder", ["sface", "sface-int8"])
def test_shipped_thresholds_read_facepps_confidences(embedder: str) -> None:
    """The curve is anchored on the thresholds: each reads (within a few tenths) the confidence Face++ reports."""
    shipped = default_calibration(embedder)
    assert (shipped.midpoint, shipped.scale) == pytest.approx(anchored_curve(shipped.threshold_distances))
    for far, confidence in shipped.thresholds.items():
        assert confidence == pytest.approx(FACEPP_CONFIDENCES[far], abs=0.5), far


def test_normal_tail_ignores_a_few_same_person_pairs_that_move_counted_thresholds() -> None:
    """Why the tail is modelled: 60 same-person pairs among 300,000 'impostors' (a FairFace group's rate of them)
    drag the counted "1e-4" distance down to the same-person distances; the fit on the bulk barely moves."""
    clean = _impostor_distances(0.05, 0.1, 300_000, seed=1)
    dirty = np.concatenate([clean, np.full(60, 0.6)])
    counted_clean, counted_dirty = far_distance(np.sort(clean), 1e-4), far_distance(np.sort(dirty), 1e-4)
    assert counted_clean - counted_dirty > 0.3
    modelled_clean = balanced_distance([fit_tail(clean)], 1e-4)
    modelled_dirty = balanced_distance([fit_tail(dirty)], 1e-4)
    assert abs(modelled_dirty - modelled_clean) < 0.002
    assert modelled_clean == pytest.approx(counted_clean, abs=0.01)


def test_each_group_weighs_the_same_whatever_its_size() -> None:
    """Two groups, one ten times the other and with closer impostors: at the fitted thresholds the mean of the two
    groups' counted rates (fresh samples) is nominal, so the small crowded group is not drowned by the large one."""
    fit = {"large": _impostor_distances(0.03, 0.1, 400_000, 2), "small": _impostor_distances(0.12, 0.1, 40_000, 3)}
    calibration = fit_groups(fit, {})
    fresh = [_impostor_distances(0.03, 0.1, 4_000_000, 4), _impostor_distances(0.12, 0.1, 4_000_000, 5)]
    for far in ("1e-3", "1e-4"):
        d = calibration.threshold_distances[far]
        mean_rate = np.mean([np.mean(f <= d) for f in fresh])
        assert 0.8 <= mean_rate / float(far) <= 1.25, (far, mean_rate)
        pooled_rate = np.mean(np.concatenate(fresh[:1] * 10 + fresh[1:]) <= d)
        assert pooled_rate < float(far)  # pair-weighted, the large loose group would have set a laxer threshold
    assert calibration.info["groups"]["small"]["pairs"] == 40_000


@pytest.fixture(scope="module")
def small_fairface(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four adults of each FairFace race x gender: 56 real faces, too few pairs per group to model a tail."""
    source = shared_data / "fairface-dev"
    if not (source / "labels.csv").is_file():
        pytest.skip(f"fairface-dev not found at {source}")
    with (source / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["age_group"] not in ("0-2", "3-9", "10-19")]
    chosen = [
        r
        for key in sorted({(r["race"], r["gender"]) for r in rows})
        for r in spread([r for r in rows if (r["race"], r["gender"]) == key], 4)
    ]
    return fairface_folder(source, chosen, tmp_path_factory.mktemp("fairface-small"))


def test_groups_too_small_are_refused_with_their_sizes(
    small_fairface: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calibration.json"
    cache = tmp_path / "ff.npz"
    code = main(["calibrate", "--groups", str(small_fairface), "--cache", str(cache), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "cannot calibrate" in err and "at least 1000" in err and "white women 6" in err, err
    # eval far --half counts on the half calibrate --groups --half leaves: the same hash split, from the same cache
    assert main(["eval", "far", "--root", str(small_fairface), "--half", "second", "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    counted = int(re.search(r"counting on its second half only: (\d+) faces", printed).group(1))  # type: ignore[union-attr]
    found = int(re.search(r"(\d+) faces aged 0\+", printed).group(1))  # type: ignore[union-attr]
    assert 0 < counted < found


@pytest.mark.slow
def test_shipped_sface_thresholds_reproduce_from_fairface_dev(shared_data: Path, tmp_path: Path) -> None:
    """The shipped file's own command, run afresh on the fairface-dev images it was fit on (the adults of its first
    half: about 3,000 faces embedded, a few minutes on two cores), gives its thresholds and curve: the default rests
    on that data and nothing else. Only those images are linked into the folder, so nothing else is embedded."""
    source = shared_data / "fairface-dev"
    if not (source / "labels.csv").is_file():
        pytest.skip(f"fairface-dev not found at {source}")
    shipped = default_calibration("sface")
    min_age, half = int(shipped.info["min_age"]), str(shipped.info["half"])
    with (source / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if (age_group_floor(r["age_group"]) or 0) >= min_age]
    in_half = half_split(r["file"] for r in rows) == (half == "second")
    folder = fairface_folder(source, [r for r, keep in zip(rows, in_half, strict=True) if keep], tmp_path / "ff")
    out = tmp_path / "calibration-sface.json"
    args = ["calibrate", "--groups", str(folder), "--min-age", str(min_age), "--half", half, "--workers", "2"]
    assert main([*args, "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["info"]["images"] == shipped.info["images"]
    assert again["info"]["groups"].keys() == shipped.info["groups"].keys()
    for name, group in shipped.info["groups"].items():
        assert again["info"]["groups"][name]["pairs"] == group["pairs"], name
    for far, distance in shipped.threshold_distances.items():
        assert again["threshold_distances"][far] == pytest.approx(distance, abs=1e-4), far
    assert again["midpoint"] == pytest.approx(shipped.midpoint, abs=1e-3)
    assert again["scale"] == pytest.approx(shipped.scale, abs=1e-3)
