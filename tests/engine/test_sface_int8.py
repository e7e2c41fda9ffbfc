"""FACEPLUS_EMBEDDER=sface-int8: SFace quantized to int8, built deterministically from the pinned weights and the
shipped fairface-dev ranges, tagged as its own model, and close to fp32 SFace on real lfw-dev faces.

Its full measurement on lfw-dev is ``benchmarks/sface_variants.py`` (docs/ENGINE.md, "SFace int8"); here a few real
faces check that what runs is that model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from faceplus.convert import sface_int8
from faceplus.engine import Engine
from faceplus.models import runtime, sface
from faceplus.settings import EngineSettings

COUNT = 6  # the first people (by name) of lfw-dev with two or more photos: their first two photos each
#: Largest and median L2 distance allowed between a face's int8 and fp32 unit embeddings: over all 4,033 lfw-dev
#: faces the worst measured was 0.29 and the median 0.15 (docs/ENGINE.md), against a "1e-4" threshold of 1.07.
MAX_L2, MAX_MEDIAN_L2 = 0.4, 0.22
#: Largest change of a pair's distance allowed (the "1e-3" and "1e-5" thresholds lie ~0.13 apart).
MAX_PAIR_SHIFT = 0.1


@pytest.fixture(scope="module")
def exact() -> Engine:
    return Engine(EngineSettings(embedder="sface"))


@pytest.fixture(scope="module")
def fast() -> Engine:
    return Engine(EngineSettings(embedder="sface-int8"))


@pytest.fixture(scope="module")
def chips(exact: Engine, shared_data: Path) -> tuple[np.ndarray, list[str]]:
    """Aligned chips of two photos each of a few lfw-dev people (centre face, as ``faceplus eval lfw``)."""
    folders = sorted(p for p in (shared_data / "lfw-dev").iterdir() if len(list(p.glob("*.jpg"))) >= 2)
    out, names = [], []
    for folder in folders[:COUNT]:
        for path in sorted(folder.glob("*.jpg"))[:2]:
            decoded = exact.load(str(path))
            out.append(exact.chips(decoded.rgb, [exact.main_face(decoded, prefer="center", embed=False)])[0])
            names.append(folder.name)
    return np.stack(out), names


def test_versions_match_the_converter() -> None:
    assert sface.QUANTIZER_VERSION == sface_int8.QUANTIZER_VERSION
    assert sface.RANGES_FILE == sface_int8.RANGES_FILE


def test_int8_vectors_carry_their_own_model_id(exact: Engine, fast: Engine) -> None:
    """Stores never mix them: same network and weights, another variant, another id."""
    assert fast.embedder.name == "sface-int8"
    assert fast.model_id == "sface-2021dec/int8/fb143eea07838aa5"
    assert exact.model_id == "sface-2021dec/fp32/fb143eea07838aa5"
    assert fast.embedder.model == fast.embedding_model


def test_the_setting_selects_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPLUS_EMBEDDER", "sface-int8")
    assert Engine().models.make_embedder().name == "sface-int8"


def test_conversion_is_deterministic_and_quantized() -> None:
    """The same weights and ranges give the same bytes (the cached file is that conversion), with int8 weights."""
    first = sface_int8.quantize_sface(sface.weights_path())
    assert sface_int8.quantize_sface(sface.weights_path()) == first
    assert sface.model_path(embedder="sface-int8").read_bytes() == first
    model = onnx.load_from_string(first)
    float_model = sface_int8.float_graph(sface.weights_path())
    layers = [n for n in float_model.graph.node if n.op_type in ("Conv", "Gemm")]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") + ops.count("Gemm") == len(layers) and ops.count("QuantizeLinear") >= len(layers)
    weights = {t.name: int(np.prod(t.dims)) for t in float_model.graph.initializer}
    int8 = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    for layer in layers:  # every layer's weights stored in 8 bits
        assert int8.get(f"{layer.input[1]}_quantized") == weights[layer.input[1]], layer.name


def test_the_float_graph_it_quantizes_is_fp32_sface(chips: tuple[np.ndarray, list[str]]) -> None:
    """Folding the normalisations and equalizing channels changes the function only by float32 rounding."""
    x = np.ascontiguousarray(chips[0].transpose(0, 3, 1, 2), dtype=np.float32)
    exact = runtime.session(sface.model_path(), 1).run(None, {"data": x})[0]
    graph = sface_int8.float_graph(sface.weights_path())
    assert not [n for n in graph.graph.node if n.op_type in ("BatchNormalization", "Dropout", "PRelu")]
    folded = runtime.session(graph.SerializeToString(), 1).run(None, {"data": x})[0]
    assert np.abs(folded - exact).max() <= 2e-6 * np.linalg.norm(exact, axis=1).max()


def test_int8_embeddings_stay_close_to_fp32_on_real_faces(
    exact: Engine, fast: Engine, chips: tuple[np.ndarray, list[str]]
) -> None:
    faces, names = chips
    a, b = exact.embed_chips(faces), fast.embed_chips(faces)
    moved = np.linalg.norm(a - b, axis=1)
    assert moved.max() <= MAX_L2 and np.median(moved) <= MAX_MEDIAN_L2
    assert moved.min() > 0  # it is not the fp32 model
    # Pair distances move little against the thresholds' spacing, and every same-person pair stays closer than
    # every pair of different people (as under fp32).
    pair = ~np.eye(len(names), dtype=bool)
    exact_d, fast_d = (np.linalg.norm(v[:, None] - v[None], axis=2)[pair] for v in (a, b))
    assert np.abs(fast_d - exact_d).max() <= MAX_PAIR_SHIFT
    same = (np.array(names)[:, None] == np.array(names)[None])[pair]
    assert exact_d[same].max() < exact_d[~same].min()
    assert fast_d[same].max() < fast_d[~same].min()
