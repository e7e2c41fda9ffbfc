"""The command line as a user runs it, on real photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from faceplus.cli import main
from faceplus.evaluation.lfw import read_pairs


def test_detect_json_and_draw(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "drawn.jpg"
    photo = shared_data / "group-photos/images/2008_001322.jpg"
    assert main(["detect", str(photo), "--json", "--draw", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["face_num"] == 3 and len(result["faces"][0]["embedding"]) == 128
    assert Image.open(out).size == Image.open(photo).size


def test_detect_reports_bad_input(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["detect", str(bad)]) == 2
    assert "IMAGE_ERROR_UNSUPPORTED_FORMAT" in capsys.readouterr().err


def test_compare_same_and_different(shared_data: Path, capsys) -> None:
    lfw = shared_data / "lfw-dev"
    same = main(
        [
            "compare",
            str(lfw / "Aaron_Sorkin/Aaron_Sorkin_0001.jpg"),
            str(lfw / "Aaron_Sorkin/Aaron_Sorkin_0002.jpg"),
            "--json",
        ]
    )
    first = json.loads(capsys.readouterr().out)
    main(
        [
            "compare",
            str(lfw / "Aaron_Sorkin/Aaron_Sorkin_0001.jpg"),
            str(lfw / "Adam_Scott/Adam_Scott_0001.jpg"),
            "--json",
        ]
    )
    second = json.loads(capsys.readouterr().out)
    assert same == 0
    assert first["confidence"] > first["thresholds"]["1e-4"] > second["confidence"]


@pytest.mark.parametrize(("embedder", "default_row"), [("sface", "+ detection fallback"), ("resnet", "68 points")])
def test_eval_lfw_on_a_small_pairs_file(shared_data: Path, tmp_path: Path, embedder: str, default_row: str) -> None:
    """Two folds of 10+10 pairs from pairs-dev.txt, run through the real command in a subprocess, for SFace (the
    default) and dlib's ResNet (its chip and flip ablation rows)."""
    lfw = shared_data / "lfw-dev"
    lines = (lfw / "pairs-dev.txt").read_text().splitlines()[1:]
    subset = []
    for fold in range(2):
        block = lines[fold * 400 : (fold + 1) * 400]
        subset += block[:10] + block[200:210]
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("2 10\n" + "\n".join(subset) + "\n")
    assert len(read_pairs(pairs_file)) == 40
    scores = tmp_path / "scores.csv"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "faceplus",
            "eval",
            "lfw",
            "--root",
            str(lfw),
            "--pairs",
            str(pairs_file),
            "--scores",
            str(scores),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "FACEPLUS_EMBEDDER": embedder},
    )
    final = run.stdout.strip().splitlines()[-1]
    assert "engine default" in final and default_row in final and "accuracy" in final
    assert f"identity model: {'sface-2021dec' if embedder == 'sface' else 'dlib-resnet-v1'}/" in run.stdout
    accuracy = float(final.split("accuracy ")[1].split("%")[0])
    assert accuracy >= 90.0
    rows = scores.read_text().splitlines()
    assert rows[0] == "fold,same,confidence" and len(rows) == 41
