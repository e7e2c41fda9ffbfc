"""One settings module: every variable read by one parser, booleans read one way, unreadable values refused with
the variable's name, and docs/SETTINGS.md equal to the table generated from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceplus.settings import EngineSettings, ServerSettings, SettingError, all_settings, from_env, settings_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "SETTINGS.md"


@pytest.mark.parametrize(("raw", "value"), [("off", False), ("0", False), ("no", False), ("On", True), ("1", True)])
def test_booleans_read_one_way_everywhere(raw: str, value: bool) -> None:
    env = {"FACEPLUS_FLIP_TTA": raw, "FACEPLUS_STORE_IMAGES": raw, "FACEPLUS_DETECT_FALLBACK": raw}
    server = from_env(ServerSettings, env)
    assert server.store_images is value
    assert server.engine.flip_tta is value and server.engine.detection.fallback is value
    assert from_env(EngineSettings, env).flip_tta is value


@pytest.mark.parametrize(
    ("name", "raw"), [("FACEPLUS_FLIP_TTA", "of"), ("FACEPLUS_RATE_LIMIT", "fast"), ("FACEPLUS_MIN_FACE", "4.5")]
)
def test_an_unreadable_value_is_refused_with_its_name(name: str, raw: str) -> None:
    with pytest.raises(SettingError, match=name):
        from_env(ServerSettings, {name: raw})


def test_typed_values_and_overrides() -> None:
    env = {"FACEPLUS_IMAGE_MAX_SIDE": "2048", "FACEPLUS_DETECT_BUDGET_S": "0.5", "FACEPLUS_DATA_DIR": "/tmp/x"}
    settings = from_env(ServerSettings, env, engine_workers=3, rate_limit=None)
    assert settings.engine.limits.max_side == 2048 and settings.engine.detection.budget_s == 0.5
    assert settings.data_dir == Path("/tmp/x") and settings.engine_workers == 3 and settings.rate_limit == 0.0


def test_every_setting_has_a_unique_variable_and_a_meaning() -> None:
    rows = all_settings()
    names = [name for _, name, _, _ in rows]
    assert len(names) == len(set(names))
    assert all(doc.strip() for _, _, _, doc in rows)


def test_the_docs_table_is_the_code() -> None:
    assert DOCS.read_text() == settings_table(), "regenerate: uv run python -m faceplus.settings > docs/SETTINGS.md"
