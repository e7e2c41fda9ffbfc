"""The evaluation reports (``faceplus eval lfw|far --report``) on a small real run: a page with the ROC and DET
curves, each threshold marked where the measured rates put it, and per-group FAR bars with their intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from faceplus.calibration import FAR_LEVELS, default_calibration
from faceplus.engine import Engine
from faceplus.evaluation.far import group_far, pair_matrix
from faceplus.evaluation.lfw import read_pairs
from faceplus.evaluation.populations import utkface_people
from faceplus.evaluation.report import Report, Scores, far_report, write_report


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def embedding(engine: Engine, path: Path) -> np.ndarray | None:
    faces = engine.detect(path)
    return faces[0].embedding if faces else None


@pytest.fixture(scope="module")
def lfw_scores(engine: Engine, shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Confidences of 15 same-person and 15 different-person pairs of lfw-dev's first fold."""
    pairs = read_pairs(shared_data / "lfw-dev/pairs-dev.txt")
    chosen = [p for p in pairs if p.fold == 0 and p.same][:15] + [p for p in pairs if p.fold == 0 and not p.same][:15]
    calibration = default_calibration()
    scores, same = [], []
    for pair in chosen:
        a = embedding(engine, shared_data / "lfw-dev" / pair.image1)
        b = embedding(engine, shared_data / "lfw-dev" / pair.image2)
        if a is None or b is None:
            continue
        scores.append(float(calibration.confidence(np.linalg.norm(a - b))))
        same.append(pair.same)
    scores_array, same_array = np.array(scores), np.array(same)
    assert same_array.sum() >= 10 and (~same_array).sum() >= 10
    return scores_array[same_array], scores_array[~same_array]


def figures(page: str) -> dict[str, str]:
    return dict(re.findall(r"<figure class='(\w+)'>(.*?)</figure>", page, re.S))


def test_lfw_report_has_curves_with_the_thresholds_marked(lfw_scores, tmp_path: Path) -> None:
    genuine, impostor = lfw_scores
    thresholds = default_calibration().thresholds
    page = write_report(tmp_path, Report("LFW test", Scores(genuine, impostor, thresholds), ["a few pairs"]))
    html = page.read_text()
    shown = figures(html)
    assert set(shown) == {"roc", "det"}
    for svg in shown.values():
        assert svg.startswith("<svg") and svg.count("<path") >= 3
        for level in FAR_LEVELS:
            assert f"&quot;{level}&quot;" in svg or f'"{level}"' in svg, level  # the mark's label, kept as text
    assert not re.search(r"(src|href)=['\"]https?:", html)  # nothing fetched from elsewhere
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["genuine_pairs"] == len(genuine) and summary["impostor_pairs"] == len(impostor)
    for level, t in thresholds.items():
        mark = summary["thresholds"][level]
        assert mark["tar"] == pytest.approx(np.mean(genuine >= t)) and mark["far"] == pytest.approx(
            np.mean(impostor >= t)
        )
    assert np.mean(genuine) > np.mean(impostor)  # the curve is drawn from real, separable scores


def test_far_report_has_group_bars_with_intervals(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "utkface-dev"
    people, _ = utkface_people(root)
    people = [p for p in people if p.age >= 18][:60]
    vectors = [embedding(engine, root / p.path) for p in people]
    kept = [(p, v) for p, v in zip(people, vectors, strict=True) if v is not None]
    people, matrix = [p for p, _ in kept], pair_matrix(np.array([v for _, v in kept]))
    calibration = default_calibration()
    rows = group_far(matrix, people, np.arange(len(people)), calibration.threshold_distances)
    page = far_report(tmp_path, root, rows, None, calibration)
    html = page.read_text()
    shown = figures(html)
    assert set(shown) == {"groups"}  # no same-person pairs without --lfw: no curves, said in words
    assert "no ROC or DET curve" in html
    bars = shown["groups"]
    assert "nominal rate" in bars and "FAR / nominal" in bars
    for group in rows:
        if group.pairs:
            assert f">{group.group}<" in html  # in the table beside the bars
    assert len(rows[0].accepts) == len(FAR_LEVELS) and rows[0].pairs == len(people) * (len(people) - 1) // 2


def test_thin_group_mark_agrees_with_eval_far() -> None:
    from faceplus.evaluation import far, report

    for n in (10, 1_000, 10_000, 100_000, 3_000_000):
        for level in FAR_LEVELS:
            assert report.enough_pairs(n, float(level)) == far.enough_pairs(n, float(level)), (n, level)
