"""Where the store is: a ``postgresql://`` URL or a data folder, nothing else. A database URL with any other scheme is
refused when faceplus starts, with a message naming the variable and never the password, and no folder is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceplus.cli import main as cli_main
from faceplus.settings import ServerSettings
from faceplus.store.factory import StoreLocationError, open_store

PASSWORD = "s3cretPassw0rd"
BAD_URLS = (
    f"postgresql+psycopg://u:{PASSWORD}@db/x",
    f"mysql://u:{PASSWORD}@db/x",
    f"sqlite:///tmp/{PASSWORD}",
    f"not a url {PASSWORD}",
)


def _made_nothing(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["data"], "a folder was created from the URL"


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_unknown_database_url_is_refused_at_open(url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(StoreLocationError) as caught:
        open_store(ServerSettings(data_dir=tmp_path / "data", database_url=url))
    assert "FACEPLUS_DATABASE_URL" in str(caught.value) and PASSWORD not in str(caught.value)
    _made_nothing(tmp_path)


@pytest.mark.parametrize("command", [["keys", "list"], ["serve", "--port", "1"]])
def test_the_command_line_refuses_it_before_starting(
    command: list[str], tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("FACEPLUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACEPLUS_DATABASE_URL", BAD_URLS[0])
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("serve started on a refused database URL"))
    assert cli_main(command) == 2
    err = capsys.readouterr().err
    assert "FACEPLUS_DATABASE_URL" in err and "postgresql+psycopg" in err and PASSWORD not in err
    _made_nothing(tmp_path)


def test_migrate_refuses_an_unknown_scheme_on_either_side(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert cli_main(["migrate", "--from", str(tmp_path / "data"), "--to", BAD_URLS[1]]) == 2
    assert cli_main(["migrate", "--from", BAD_URLS[0], "--to", str(tmp_path / "data")]) == 2
    assert PASSWORD not in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["faceplus.sqlite3"]
    _made_nothing(tmp_path)
