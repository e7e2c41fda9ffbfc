"""Fixtures for the Face++ API tests: one shared Engine, in-process apps on temp data folders, real photos.

Every test that builds apps through ``make_api`` runs on both stores: the embedded SQLite one and PostgreSQL
(a fresh schema per app, on the server named by ``FACEPLUS_TEST_DATABASE_URL``; skipped when it is unset;
``.ci/postgres.sh`` starts one).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.api.auth import new_key
from faceplus.engine import Engine
from faceplus.settings import ServerSettings
from faceplus.workers import EnginePool, PoolLimits
from store.backends import PostgresSchemas, database_url, drop_schemas, schema_url  # noqa: F401 (the api tests import them from here)

#: lfw-dev people one of whose first photos shows a second face the default detector finds (see ``lfw_people``).
TWO_FACE_PEOPLE = frozenset({"Abdullah_al-Attiyah"})


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store the module's apps run on."""
    if request.param == "postgres":
        database_url()
    return request.param


@pytest.fixture(scope="session")
def engine() -> Engine:
    """One engine for every in-process app (models load once)."""
    return Engine()


@pytest.fixture(scope="session")
def engine_pool(engine: Engine) -> Iterator[EnginePool]:
    """Two engine worker processes shared by every in-process app, as ``faceplus serve`` runs them."""
    with EnginePool(engine.settings, PoolLimits(workers=2)) as pool:
        yield pool


@pytest.fixture(scope="session")
def lfw_people(shared_data: Path) -> list[tuple[str, list[Path]]]:
    """lfw-dev people with two or more photos, sorted by name: (name, photos); tests take a photo for one face.

    Left out: people with a second, real face in a photo that the detector finds (Abdullah_al-Attiyah_0002: a man
    at the right edge, 55 px).
    """
    people = []
    for folder in sorted((shared_data / "lfw-dev").iterdir()):
        if folder.is_dir() and folder.name not in TWO_FACE_PEOPLE:
            photos = sorted(folder.glob("*.jpg"))
            if len(photos) >= 2:
                people.append((folder.name, photos))
    return people


class Api:
    """A TestClient on one app with helpers to post as a given key."""

    def __init__(self, client: TestClient, settings: ServerSettings) -> None:
        self.client = client
        self.settings = settings
        self.ctx = client.app.state.ctx  # type: ignore[attr-defined]
        self.keys: dict[str, dict[str, str]] = {}

    def add_key(self, label: str) -> dict[str, str]:
        record, secret = new_key(label)
        self.ctx.store.keys.add(record)
        self.keys[label] = {"api_key": record.api_key, "api_secret": secret}
        return self.keys[label]

    def post(
        self, route: str, as_key: str | None = "a", files: dict[str, Any] | None = None, **fields: Any
    ) -> httpx.Response:
        data = {k: str(v) for k, v in fields.items() if v is not None}
        if as_key is not None:
            data.update(self.keys[as_key])
        return self.client.post(f"/facepp/v3/{route}", data=data, files=files)

    def ok(self, route: str, as_key: str | None = "a", files: dict[str, Any] | None = None, **fields: Any) -> dict:
        r = self.post(route, as_key, files, **fields)
        assert r.status_code == 200, (route, r.status_code, r.text)
        body = r.json()
        assert isinstance(body["request_id"], str) and body["request_id"]
        assert isinstance(body["time_used"], int) and body["time_used"] >= 0
        assert "error_message" not in body
        return body

    def error(
        self, route: str, status: int, as_key: str | None = "a", files: dict[str, Any] | None = None, **fields: Any
    ) -> str:
        r = self.post(route, as_key, files, **fields)
        assert r.status_code == status, (route, r.status_code, r.text)
        body = r.json()
        assert isinstance(body["request_id"], str) and isinstance(body["time_used"], int)
        return body["error_message"]

    def detect_token(self, photo: Path, as_key: str = "a") -> str:
        faces = self.ok("detect", as_key, files={"image_file": photo.read_bytes()})["faces"]
        assert faces, f"no face in {photo}"
        return faces[0]["face_token"]


@pytest.fixture(scope="module")
def make_api(
    engine: Engine, engine_pool: EnginePool, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> Iterator[Callable[..., Api]]:
    """Build in-process apps (sharing the engine) on fresh or given data folders; closed at module end."""
    opened: list[TestClient] = []
    schemas = PostgresSchemas(database_url()) if backend == "postgres" else None

    def build(data_dir: Path | None = None, **overrides: Any) -> Api:
        folder = data_dir or tmp_path_factory.mktemp("data")
        settings = replace(ServerSettings(data_dir=folder), **overrides)
        store = schemas.open(folder, hnsw_threshold=settings.db_hnsw_threshold) if schemas else None
        client = TestClient(create_app(settings, engine=engine, store=store, pool=engine_pool))
        client.__enter__()
        opened.append(client)
        api = Api(client, settings)
        return api

    yield build
    for client in opened:
        client.__exit__(None, None, None)
    if schemas is not None:
        schemas.close()


@pytest.fixture(scope="module")
def api(make_api: Callable[..., Api]) -> Api:
    """The module's main app with two tenants, "a" and "b"."""
    built = make_api(getdetail_page=3)
    built.add_key("a")
    built.add_key("b")
    return built


def random_token() -> str:
    return secrets.token_hex(16)
