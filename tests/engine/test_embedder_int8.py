"""FACEPLUS_EMBEDDER=resnet-int8: dlib's ResNet quantized to int8 stays close to the exact model on real faces.

The int8 model is built on first use from the packaged weights and the shipped activation ranges
(``faceplus.convert.resnet_int8``). Its full measurement on lfw-dev is ``benchmarks/embedder_variants.py``
(docs/ENGINE.md, "Faster embedder variants"); here a few real faces and pairs check that what runs is that model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from faceplus.convert import resnet_int8
from faceplus.engine import Engine, EngineModels
from faceplus.evaluation.lfw import read_pairs
from faceplus.models import resnet_onnx
from faceplus.settings import EngineSettings

#: Pairs of each kind (same person, different people) from the start of pairs-dev.txt's first fold.
PAIRS = 6
#: Largest raw descriptor component difference to fp32 allowed, and largest L2 distance of a face's engine
#: embedding (flip TTA, unit length) to fp32's: about twice the worst measured on the 3,419 lfw-dev faces of
#: pairs-dev.txt (0.023 and 0.038, docs/ENGINE.md), an eighth of the "1e-4" threshold distance (0.336).
MAX_RAW, MAX_L2 = 0.05, 0.075


@pytest.fixture(scope="module")
def exact() -> Engine:
    return Engine(EngineSettings(embedder="resnet"))


@pytest.fixture(scope="module")
def fast() -> Engine:
    return Engine(EngineSettings(embedder="resnet-int8"))


@pytest.fixture(scope="module")
def pairs_and_chips(shared_data: Path, exact: Engine) -> tuple[list, dict[str, np.ndarray]]:
    """The first PAIRS same-person and PAIRS different-person pairs of fold 1, and each image's chip."""
    root = shared_data / "lfw-dev"
    pairs = [p for p in read_pairs(root / "pairs-dev.txt") if p.fold == 0]
    chosen = [p for p in pairs if p.same][:PAIRS] + [p for p in pairs if not p.same][:PAIRS]
    chips = {}
    for image in sorted({p.image1 for p in chosen} | {p.image2 for p in chosen}):
        decoded = exact.load(root / image)
        face = exact.main_face(decoded, prefer="center", embed=False)  # as faceplus eval lfw does
        chips[image] = exact.chips(decoded.rgb, [face])[0]
    return chosen, chips


def test_resnet_is_the_exact_model(exact: Engine, fast: Engine) -> None:
    """``resnet`` runs dlib's exact network and ``resnet-int8`` its quantization (the default is SFace:
    tests/engine/test_sface.py)."""
    assert exact.embedder.name == "resnet"
    assert EngineModels.for_settings(EngineSettings(embedder="resnet")).make_embedder().name == "resnet"
    assert fast.embedder.name == "resnet-int8"
    assert resnet_onnx.model_path("resnet") != resnet_onnx.model_path("resnet-int8")


def test_the_setting_selects_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPLUS_EMBEDDER", "resnet-int8")
    assert Engine().models.make_embedder().name == "resnet-int8"


def test_unknown_embedder_is_refused() -> None:
    with pytest.raises(ValueError, match="resnet-int8"):
        Engine(EngineSettings(embedder="resnet-int4"))


def test_the_int8_model_is_quantized() -> None:
    """Weights stored in int8 (a quarter of the fp32 file) and every convolution fed quantized activations."""
    model = onnx.load(str(resnet_onnx.model_path("resnet-int8")))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 29 and ops.count("QuantizeLinear") >= 29
    assert resnet_onnx.model_path("resnet-int8").stat().st_size < resnet_onnx.model_path("resnet").stat().st_size / 3


def test_runtime_and_quantizer_name_the_same_recipe() -> None:
    assert resnet_onnx.QUANTIZER_VERSION == resnet_int8.QUANTIZER_VERSION
    assert resnet_onnx.RANGES_FILE == resnet_int8.RANGES_FILE


def test_descriptors_stay_near_fp32(exact: Engine, fast: Engine, pairs_and_chips) -> None:
    _, chips = pairs_and_chips
    batch = np.stack(list(chips.values()))
    raw_exact, raw_fast = exact.embedder.embed(batch), fast.embedder.embed(batch)
    assert np.abs(raw_fast - raw_exact).max() <= MAX_RAW
    assert np.abs(raw_fast - raw_exact).max() > 1e-4  # it is not the exact model
    moved = np.linalg.norm(fast.embed_chips(batch) - exact.embed_chips(batch), axis=1)
    assert moved.max() <= MAX_L2


def test_pairs_keep_their_decisions_at_1e4(exact: Engine, fast: Engine, pairs_and_chips) -> None:
    """Same-person pairs still match and different-person pairs still do not, at the shipped "1e-4" threshold.

    The six same-person pairs sit 0.006-0.058 under the "1e-4" distance (0.336) with fp32; int8 moved their
    distances by at most 0.007, so a recipe that moved embeddings much further would fail here.
    """
    pairs, chips = pairs_and_chips
    for engine in (exact, fast):
        vectors = {image: engine.embed_chips(chip[None])[0] for image, chip in chips.items()}
        decisions = [engine.match(vectors[p.image1], vectors[p.image2]).is_same_person("1e-4") for p in pairs]
        assert decisions == [p.same for p in pairs], engine.embedder.name


def test_calibration_embeds_with_the_configured_embedder(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folder embeddings use the identity model they are given (the commands give FACEPLUS_EMBEDDER's: thresholds
    fit what serving scores), and an int8 cache is a file of its own, never mixed with fp32 vectors."""
    from faceplus.evaluation.folder_embeddings import FolderEmbeddings, cache_path, embed_folder, model_id_of

    root = shared_data / "lfw-dev"
    photos = ["Aaron_Sorkin/Aaron_Sorkin_0001.jpg", "Aaron_Sorkin/Aaron_Sorkin_0002.jpg"]
    cache = tmp_path / "emb.npz"
    exact = embed_folder(root, photos, workers=1, cache=cache, progress=False, embedder="resnet").vectors()
    embedded = embed_folder(root, photos, workers=1, cache=cache, progress=False, embedder="resnet-int8")
    fast = embedded.vectors()
    files = {e: cache_path(cache, model_id_of(e), "blazeface") for e in ("resnet", "resnet-int8")}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files.values())
    assert "fp32" in files["resnet"].name and "int8" in files["resnet-int8"].name
    with pytest.raises(ValueError, match="not dlib-resnet-v1/int8"):  # renamed by hand: refused, not mixed
        FolderEmbeddings.load(files["resnet"], model_id_of("resnet-int8"))
    moved = np.linalg.norm(exact - fast, axis=1)
    assert np.all(moved > 1e-4) and np.all(moved < MAX_L2), moved  # the int8 model ran, and stayed near fp32
    # The fit uses the serving engine's chip too (one pass here), and the file says so.
    from faceplus.cli.evaluation import embedder_note, engine_vectors

    monkeypatch.setenv("FACEPLUS_EMBEDDER", "resnet-int8")
    monkeypatch.setenv("FACEPLUS_FLIP_TTA", "0")
    assert embedder_note() == "dlib-resnet-v1 (onnx int8), 68-pt chip, one pass, unit length"
    one_pass = engine_vectors(embedded)
    assert np.allclose(one_pass, embedded.vectors(flip_tta=False)) and not np.allclose(one_pass, fast)


def test_ablation_rows_do_not_write_into_the_cached_descriptors() -> None:
    """``eval lfw``'s first row drops fallback faces; that must not leak into the next rows (it did: the NaNs were
    written into the raw descriptors the later rows read, so "+ detection fallback" still missed 22 faces)."""
    from faceplus.evaluation.folder_embeddings import VARIANTS, FolderEmbeddings

    raw = {k: np.ones((3, 128), np.float32) for k in VARIANTS}
    embeddings = FolderEmbeddings(["a.jpg", "b.jpg", "c.jpg"], raw, ["blazeface", "hog1", "blazeface"])
    first = embeddings.vectors(alignment=5, flip_tta=False, normalize=False, fallback=False, primary="blazeface")
    assert np.isnan(first[1]).all() and not np.isnan(first[[0, 2]]).any()
    assert not np.isnan(embeddings.vectors(alignment=5, flip_tta=False, normalize=False)).any()
