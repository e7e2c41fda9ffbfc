"""``faceplus index`` and ``faceplus cluster`` on PostgreSQL: the same commands a user runs, with
``FACEPLUS_DATABASE_URL`` set exactly as for ``serve``; indexing resumes from the ledger kept in the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceplus.cli import main
from faceplus.store.postgres import PostgresStore
from faceplus.tools.indexing import Ledger
from store.backends import database_url, drop_schemas, schema_url

from .test_indexing import make_album


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """FACEPLUS_DATABASE_URL on a fresh schema (and a data folder that must stay unused)."""
    import secrets

    url = database_url()
    schema = f"tools_{secrets.token_hex(4)}"
    scoped = schema_url(url, schema)
    monkeypatch.setenv("FACEPLUS_DATABASE_URL", scoped)
    monkeypatch.setenv("FACEPLUS_DATA_DIR", str(tmp_path / "unused"))
    yield scoped
    drop_schemas(url, [schema])


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_index_and_cluster_work_on_postgres_and_resume(pg_env: str, shared_data: Path, tmp_path: Path, capsys) -> None:
    album = tmp_path / "album"
    people = make_album(shared_data, album, people=4, per_person=6)
    photos = sum(len(p) for p in people.values())
    common = ["--faceset", "pgalbum", "--workers", "1", "--quiet"]

    code, out = run(capsys, "index", str(album), *common, "--user-id-from-folder", "--max-files", "7")
    assert code == 0 and "database: postgresql://" in out, out
    code, out = run(capsys, "index", str(album), *common, "--user-id-from-folder")  # resumes: only the rest
    assert code == 0, out
    assert "already indexed, skipped: 7" in out, out
    code, out = run(capsys, "index", str(album), *common, "--user-id-from-folder")  # nothing left to do
    assert code == 0 and f"already indexed, skipped: {photos + 2}" in out and "images indexed: 0" in out, out

    store = PostgresStore(pg_env)
    try:
        faceset = store.facesets.get("local", outer_id="pgalbum")
        assert faceset is not None
        members = store.facesets.tokens("local", faceset.faceset_token, 0, 10_000)
        ledger = Ledger(store).entries("local", faceset.faceset_token)
        ledger_tokens = [t for _, _, tokens in ledger.values() for t in tokens]
        assert len(members) == len(set(members)) == len(ledger_tokens) >= photos - 1  # one token per face, once
        assert sorted(members) == sorted(ledger_tokens)
        assert len(ledger) == photos + 2  # every photo, the broken file and the faceless corner
        assert not (Path(str(tmp_path / "unused")) / "indexing.sqlite3").exists()
    finally:
        store.close()

    code, out = run(capsys, "cluster", "--faceset", "pgalbum", "--eval", "--quiet", "--workers", "1")
    assert code == 0, out
    f1 = float(re.search(r"pairwise .* F1 ([0-9.]+)", out).group(1))
    assert f1 >= 0.9, out
