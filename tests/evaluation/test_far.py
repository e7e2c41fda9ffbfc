"""False-accept rates per group (``faceplus eval far``) and cohort score normalisation, on real faces."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from faceplus.calibration import CohortNorm
from faceplus.cli import main
from faceplus.evaluation.far import GroupFar, count_accepts, enough_pairs, group_far, pair_matrix, wilson
from faceplus.evaluation.populations import parse_utkface_name, utkface_people
from faceplus.settings import EngineSettings


def test_utkface_file_names_agree_with_the_label_file(shared_data: Path) -> None:
    root = shared_data / "utkface-dev"
    people, malformed = utkface_people(root)
    with (root / "labels.csv").open() as f:
        labels = {row["file"]: row for row in csv.DictReader(f)}
    assert malformed == 0 and len(people) == len(labels)
    for person in people:
        row = labels[person.path]
        assert (person.age, person.gender, person.race) == (int(row["age"]), row["gender"], row["race"])
    assert parse_utkface_name("images/39_1_20170116174525125.jpg.chip.jpg") is None  # UTKFace's race-less names
    assert parse_utkface_name("notes.jpg") is None


def test_wilson_interval() -> None:
    low, high = wilson(0, 100)
    assert low == 0 and high == pytest.approx(3.8416 / 103.8416, rel=1e-4)
    assert all(wilson(0, n)[0] == 0 and wilson(n, n)[1] == 1 for n in range(1, 200))  # no rounding residue
    low, high = wilson(30, 10_000)
    assert low < 30 / 10_000 < high and high - low < 0.003
    # 12,300 pairs with no false accept bound the rate below 3e-4; 5,000 do not.
    assert enough_pairs(13_000, 1e-4) and not enough_pairs(5_000, 1e-4)


def test_group_counts_pairs_within_each_group() -> None:
    scores = np.array([0.1, 0.3, 0.5, 0.2])
    assert count_accepts(scores, {"1e-3": 0.25, "1e-4": 0.05}) == {"1e-3": 2, "1e-4": 0}
    pooled = GroupFar("all", 100, {"1e-3": 1}) + GroupFar("all", 300, {"1e-3": 3})
    assert pooled.pairs == 400 and pooled.ratio("1e-3") == pytest.approx(10.0)


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict:
    """dlib ResNet embeddings of real faces (the shipped cohort calibration's model): a few LFW people (two photos
    each) and 60 UTKFace chips."""
    from faceplus.engine import Engine

    engine = Engine(EngineSettings(embedder="resnet"))
    lfw = shared_data / "lfw-dev"
    pairs = [
        ("Aaron_Sorkin/Aaron_Sorkin_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0002.jpg"),
        ("Ai_Sugiyama/Ai_Sugiyama_0001.jpg", "Ai_Sugiyama/Ai_Sugiyama_0002.jpg"),
    ]
    lfw_vectors = np.array([engine.main_face(lfw / p).embedding for pair in pairs for p in pair])
    people, _ = utkface_people(shared_data / "utkface-dev")
    adults = [p for p in people if p.age >= 18][::8][:60]
    utk, found = [], []
    for person in adults:
        faces = engine.detect(shared_data / "utkface-dev" / person.path)
        if faces:
            utk.append(faces[0].embedding)
            found.append(person)
    return {"lfw": lfw_vectors, "utk": np.array(utk), "people": found}


def test_normalised_score_is_the_same_whichever_side_is_first(real: dict) -> None:
    norm = CohortNorm.build(real["utk"], k=10)
    a, b, c, d = real["lfw"]
    for x, y in ((a, b), (a, c), (c, d), (b, d)):
        assert norm.distance(x, y) == norm.distance(y, x)
    # Same person closer than different people, after normalisation as before.
    assert norm.distance(a, b) < norm.distance(a, c) and norm.distance(c, d) < norm.distance(b, d)


def test_a_cohort_from_other_data_changes_scores_by_a_bounded_amount(real: dict) -> None:
    utk = real["utk"]
    first, second = CohortNorm.build(utk[0::2], k=8), CohortNorm.build(utk[1::2], k=8)
    lfw = real["lfw"]
    raw = pair_matrix(lfw)[np.triu_indices(len(lfw), 1)]
    for norm in (first, second):
        m = norm.density(lfw)
        assert np.all((m > 0.3) & (m < 1.0))  # a real neighbourhood, not self-matches
    one = np.array([first.distance(x, y) for i, x in enumerate(lfw) for y in lfw[i + 1 :]])
    two = np.array([second.distance(x, y) for i, x in enumerate(lfw) for y in lfw[i + 1 :]])
    # Two disjoint cohorts of 30 faces move a pair's score by less than the gap between the "1e-3" and "1e-4"
    # thresholds (about 0.04 in distance): the cohort shifts scores, it does not reorder them wholesale.
    assert np.max(np.abs(one - two)) < 0.04, (one, two)
    assert np.max(np.abs(one - raw)) < 0.15


def test_a_person_is_not_their_own_cohort_neighbour(real: dict) -> None:
    utk = real["utk"]
    norm = CohortNorm.build(utk, k=5, labels=np.arange(len(utk)).astype(str))
    # A face never counts itself (distance 0, the same photo), labels or not: an operator's cohort holds faces
    # that are also enrolled and compared.
    d = np.linalg.norm(utk[:, None] - utk[None], axis=2)
    np.fill_diagonal(d, np.inf)
    alone = norm.density(utk)
    assert np.allclose(alone, np.sort(d, axis=1)[:, :5].mean(1), atol=1e-5)
    # Labels also skip a person's other faces (here the faces go two by two under one label).
    pairs = (np.arange(len(utk)) // 2).astype(str)
    without = norm.density(utk, pairs, pairs)
    assert np.all(without >= alone - 1e-9) and np.any(without > alone + 1e-3)


def test_shift_strength_scales_the_cohort_shift(real: dict) -> None:
    """``eval far --strength``: strength 1 scores exactly as serving's CohortNorm does; 2 doubles each pair's shift."""
    from faceplus.evaluation.far import _scores

    norm = CohortNorm.build(real["utk"], k=10)
    lfw = real["lfw"]
    m = norm.density(lfw)
    served = np.array([[norm.distance(x, y) for y in lfw] for x in lfw])
    one, two = _scores(norm, lfw, m, 1.0), _scores(norm, lfw, m, 2.0)
    off = ~np.eye(len(lfw), dtype=bool)
    assert np.allclose(one[off], served[off], atol=1e-5)
    raw = pair_matrix(lfw)
    assert np.allclose((two - raw)[off], 2 * (one - raw)[off], atol=1e-5)
    assert np.abs((one - raw)[off]).max() > 1e-3  # the faces really are shifted


def test_eval_far_command(shared_data: Path, tmp_path: Path, capsys) -> None:
    source = shared_data / "utkface-dev"
    people, _ = utkface_people(source)
    folder = tmp_path / "utk"
    folder.mkdir()
    for person in [p for p in people if p.age >= 18][::40][:10]:
        (folder / Path(person.path).name).symlink_to(source / person.path)
    cache = tmp_path / "far.npz"
    assert main(["eval", "far", "--root", str(folder), "--min-age", "18", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "10 images: " in out and "with no face found" in out
    # The cache is a file of the identity model that made it, and refuses to serve another model's reader.
    from faceplus.engine import Engine
    from faceplus.evaluation.far import Embedded
    from faceplus.evaluation.folder_embeddings import cache_path

    engine = Engine()
    written = cache_path(cache, engine.model_id, engine.settings.detection.detector)
    assert written.is_file() and engine.model_id.replace("/", "-") in written.name
    assert Embedded.load(written, engine.model_id).model_id == engine.model_id
    with pytest.raises(ValueError, match="holds embeddings of"):
        Embedded.load(written, "sface-2021dec/fp32/0123456789abcdef")
    faces = int(out.split(" faces aged 18+")[0].rsplit("\n", 1)[-1])
    assert f"| all | {faces * (faces - 1) // 2:,} |" in out
    # The second run reads the cache and prints the same table.
    assert main(["eval", "far", "--root", str(folder), "--min-age", "18", "--cache", str(cache)]) == 0
    assert capsys.readouterr().out == out


def test_group_far_on_real_faces(real: dict) -> None:
    people, vectors = real["people"], real["utk"]
    threshold = {"1e-3": 0.5}
    rows = {g.group: g for g in group_far(pair_matrix(vectors), people, np.arange(len(people)), threshold)}
    # Brute force: every unordered pair of two women, and how many are closer than the threshold.
    women = [i for i, p in enumerate(people) if p.gender == "female"]
    close = [np.linalg.norm(vectors[i] - vectors[j]) <= 0.5 for n, i in enumerate(women) for j in women[n + 1 :]]
    assert rows["women"].pairs == len(close) and rows["women"].accepts["1e-3"] == sum(close)
    assert rows["all"].pairs == len(people) * (len(people) - 1) // 2


def test_shipped_cohort_calibration_in_compare(real: dict) -> None:
    """FACEPLUS_COMPARE_CALIBRATION=cohort: match scores normalised, symmetric, and says what it is calibrated on."""
    from faceplus.calibration import compare_calibration, default_calibration
    from faceplus.engine import Engine

    shipped = compare_calibration("cohort")
    assert shipped.normalization and "non-commercial" in shipped.info["cohort"]
    assert compare_calibration("lfw") is default_calibration()
    engine = Engine(EngineSettings(embedder="resnet"), calibration=shipped)
    a, b, c, d = real["lfw"]
    ab, ba = engine.match(a, b), engine.match(b, a)
    assert ab == ba and ab.to_facepp()["calibration"] == shipped.calibrated_on
    assert ab.is_same_person("1e-4") and not engine.match(a, c).is_same_person("1e-3")
    assert engine.match(c, d).is_same_person("1e-4") and not engine.match(b, d).is_same_person("1e-3")
    # A cohort from other data (60 utkface-dev faces, none in the shipped cohort) moves scores by a bounded
    # amount (on 300 LFW faces: p99 0.06, max 0.09 in distance) and leaves clear decisions as they were.
    other = CohortNorm.build(real["utk"], k=shipped.normalization["k"])
    own = shipped.cohort()
    assert own is not None and len(own.vectors) > 500
    for x, y in ((a, b), (c, d), (a, c), (b, d)):
        assert abs(own.distance(x, y) - other.distance(x, y)) < 0.1
        assert (own.distance(x, y) <= shipped.threshold_distances["1e-4"]) == (
            other.distance(x, y) <= shipped.threshold_distances["1e-4"]
        )
