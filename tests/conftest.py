"""Shared test fixtures: the real data sets beside the repo, skipped with a reason where absent."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceplus.store import Store
from store.backends import PostgresSchemas, database_url, drop_schemas, schema_url

DATA = Path(os.environ.get("FACEPLUS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
_OWN_DATA_DIR: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--doc-screenshots",
        action="store_true",
        help="tests/web/test_console_docs.py: write the console's pictures (FairFace photos only) to docs/console/ "
        "instead of artifacts/docs-console/",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Tests never read the person's own data folder: a calibration ``faceplus calibrate`` left there would change
    every engine's thresholds (``FACEPLUS_COMPARE_CALIBRATION=auto``). Tests that want a folder name one."""
    _OWN_DATA_DIR.append(tempfile.mkdtemp(prefix="faceplus-tests-data-"))
    os.environ["FACEPLUS_DATA_DIR"] = _OWN_DATA_DIR[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _OWN_DATA_DIR:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real face data sets (../shared/data), or skip the test where it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data sets not found at {DATA} (set FACEPLUS_SHARED_DATA)")
    return DATA


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A URL on a fresh, empty schema of the test server (dropped afterwards)."""
    url = database_url()
    schema = f"test_{secrets.token_hex(6)}"
    yield schema_url(url, schema)
    drop_schemas(url, [schema])


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A bare store of each backend (no app): SQLite in ``tmp_path``, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        from faceplus.store.sqlite import SQLiteStore

        opened: Store = SQLiteStore.in_folder(tmp_path)
        yield opened
        opened.close()
        return
    schemas = PostgresSchemas(database_url())
    yield schemas.open(tmp_path)
    schemas.close()


#: ``album``: 10 lfw-dev people x 6 photos: 150 same-person and 1,620 impostor pairs, enough for FAR 1e-3 with one
#: false accept at the threshold (1,000 pairs), not for the defaults (10 false accepts: 10,000 pairs at 1e-3).
ALBUM_PEOPLE, ALBUM_PER_PERSON = 10, 6


@pytest.fixture(scope="session")
def album(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lfw-dev people with 6+ photos, 6 each, as symlinks in one folder per person (the calibration tests')."""
    root = tmp_path_factory.mktemp("calibration-album")
    people = [f for f in sorted((shared_data / "lfw-dev").iterdir()) if len(list(f.glob("*.jpg"))) >= ALBUM_PER_PERSON]
    for folder in people[:ALBUM_PEOPLE]:
        (root / folder.name).mkdir()
        for photo in sorted(folder.glob("*.jpg"))[:ALBUM_PER_PERSON]:
            (root / folder.name / photo.name).symlink_to(photo)
    return root
