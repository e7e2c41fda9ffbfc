"""Database outages: PostgreSQL stopped under a serving faceplus, and a SQLite data folder that fills up
or turns read-only. Calls answer 503 ``DATABASE_UNAVAILABLE`` at once (no 500, no hang), nothing is half-written,
and faceplus recovers by itself when the database is back.

The PostgreSQL test runs its own private cluster (initdb in a temp folder, another port, the same binaries as
``.ci/postgres.sh``) so stopping it cannot break other tests using the shared one. The SQLite tests mount a small
tmpfs (root only; skipped otherwise).
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from faceplus.api import create_app
from faceplus.api.auth import new_key
from faceplus.settings import ServerSettings
from faceplus.store.postgres.database import POOL_WAIT_S

from .test_api_crash import create_key_env
from .test_api_http import ServerProcess

PG_BIN = Path("/usr/lib/postgresql/15/bin")
#: A call during an outage must answer within this (the pool's wait plus slack for a loaded 2-core machine).
ANSWER_BOUND_S = POOL_WAIT_S + 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 that this test may stop and start at will."""

    def __init__(self) -> None:
        if not (PG_BIN / "pg_ctl").exists():
            pytest.skip(f"no PostgreSQL binaries in {PG_BIN} (.ci/postgres.sh installs them)")
        self.root = Path(tempfile.mkdtemp(prefix="faceplus-outage-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=50"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "start", "-o", options
        )

    def stop(self) -> None:
        """As a crash or a pulled plug looks to clients: immediate shutdown, connections cut."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def close(self) -> None:
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield pg
    pg.close()


@pytest.mark.slow
def test_postgres_outage_answers_503_then_recovers(private_pg: PrivatePostgres, tmp_path: Path, lfw_people) -> None:
    srv = ServerProcess(tmp_path / "data", tmp_path / "server.log")
    srv.extra_env = {"FACEPLUS_ENGINE_WORKERS": "1", "FACEPLUS_DATABASE_URL": private_pg.url}
    srv.start()
    try:
        key = create_key_env(srv)
        url = f"{srv.base}/facepp/v3"

        def call(route: str, files: dict | None = None, **fields: str) -> tuple[httpx.Response, float]:
            t0 = time.monotonic()
            r = httpx.post(f"{url}/{route}", data={**key, **fields}, files=files, timeout=60)
            return r, time.monotonic() - t0

        photo, probe = (p.read_bytes() for p in lfw_people[5][1][:2])
        token = call("detect", files={"image_file": photo})[0].json()["faces"][0]["face_token"]
        made = call("faceset/create", outer_id="door", face_tokens=token)[0]
        assert made.status_code == 200, made.text
        before = call("search", files={"image_file": probe}, outer_id="door")[0].json()["results"]

        private_pg.stop()
        calls = {
            "faceset/getfacesets": {},
            "faceset/getdetail": {"outer_id": "door"},
            "faceset/create": {"outer_id": "during-outage"},
            "face/getdetail": {"face_token": token},
            "compare": {"face_token1": token, "face_token2": token},
        }
        times: dict[str, float] = {}
        for route, fields in calls.items():
            r, times[route] = call(route, **fields)
            assert r.status_code == 503 and r.json()["error_message"] == "DATABASE_UNAVAILABLE", (route, r.text)
            assert times[route] < ANSWER_BOUND_S, (route, times[route])
        r, took = call("search", files={"image_file": probe}, outer_id="door")
        assert (r.status_code, r.json()["error_message"]) == (503, "DATABASE_UNAVAILABLE") and took < ANSWER_BOUND_S
        assert httpx.get(f"{srv.base}/healthz", timeout=10).status_code == 200  # the process itself is alive
        assert httpx.get(f"{srv.base}/readyz", timeout=30).status_code == 503

        private_pg.start()
        back = time.monotonic()
        while call("faceset/getfacesets")[0].status_code != 200:
            assert time.monotonic() < back + 15, "faceplus did not recover within 15 s of the database's return"
            time.sleep(0.5)
        print(
            f"\noutage: 503 DATABASE_UNAVAILABLE in {', '.join(f'{k} {v:.2f} s' for k, v in times.items())}, "
            f"search {took:.2f} s; first 200 {time.monotonic() - back:.1f} s after the database returned"
        )
        after = call("search", files={"image_file": probe}, outer_id="door")[0].json()["results"]
        assert after == before
        listed = call("faceset/getfacesets")[0].json()["facesets"]
        assert [f["outer_id"] for f in listed] == ["door"]  # the create refused during the outage left nothing
        assert call("faceset/create", outer_id="after-outage")[0].status_code == 200
        assert httpx.get(f"{srv.base}/readyz", timeout=30).status_code == 200
    finally:
        srv.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs, unmounted afterwards (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def disk_api(small_disk: Path, engine, engine_pool) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(ServerSettings(data_dir=small_disk / "data"), engine=engine, pool=engine_pool)
    with TestClient(app) as client:
        record, secret = new_key("disk")
        app.state.ctx.store.keys.add(record)
        yield client, {"api_key": record.api_key, "api_secret": secret}


def _post(client: TestClient, key: dict[str, str], route: str, files: dict | None = None, **fields: str):
    return client.post(f"/facepp/v3/{route}", data={**key, **fields}, files=files)


def _integrity(data_dir: Path) -> None:
    for path in data_dir.glob("*.sqlite3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path


def test_full_data_folder_refuses_writes_cleanly(disk_api, small_disk: Path, lfw_people) -> None:
    client, key = disk_api
    photo = lfw_people[6][1][0].read_bytes()
    token = _post(client, key, "detect", files={"image_file": photo}).json()["faces"][0]["face_token"]
    assert _post(client, key, "faceset/create", outer_id="kept", face_tokens=token).status_code == 200
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # fill the disk to the last block
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    refused = 0
    for n in range(20):  # enough writes to need a new page of the database or its WAL
        r = _post(client, key, "faceset/create", outer_id=f"full-{n}", user_data="u" * 16_000)
        if r.status_code != 200:
            assert (r.status_code, r.json()["error_message"]) == (503, "DATABASE_UNAVAILABLE"), r.text
            refused += 1
    assert refused > 0, "the disk never filled"
    assert _post(client, key, "faceset/getdetail", outer_id="kept").json()["face_tokens"] == [token]
    filler.unlink()
    assert _post(client, key, "faceset/create", outer_id="after").status_code == 200
    names = {f["outer_id"] for f in _post(client, key, "faceset/getfacesets").json()["facesets"]}
    for n in range(20):  # each refused create left nothing; each accepted one is whole
        if f"full-{n}" in names:
            detail = _post(client, key, "faceset/getdetail", outer_id=f"full-{n}").json()
            assert detail["user_data"] == "u" * 16_000
    assert {"kept", "after"} <= names and len(names) == 2 + 20 - refused
    _integrity(small_disk / "data")


def test_read_only_data_folder_refuses_writes_cleanly(small_disk: Path, engine, engine_pool, lfw_people) -> None:
    """A data folder that turned read-only (a remount after a disk error): faceplus refuses to start on it with the
    OS error naming the file (it opens its database read-write), touches nothing, and works once it is writable.
    A folder that fills up while serving is the test above (503 per refused write)."""
    data = small_disk / "data"
    photo = lfw_people[7][1][0].read_bytes()
    app = create_app(ServerSettings(data_dir=data), engine=engine, pool=engine_pool)
    with TestClient(app) as client:
        record, secret = new_key("ro")
        app.state.ctx.store.keys.add(record)
        key = {"api_key": record.api_key, "api_secret": secret}
        token = _post(client, key, "detect", files={"image_file": photo}).json()["faces"][0]["face_token"]
        assert _post(client, key, "faceset/create", outer_id="kept", face_tokens=token).status_code == 200
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:  # faceplus refuses to start on it, saying which file and why, and changes nothing
        with pytest.raises(OSError) as refused:
            create_app(ServerSettings(data_dir=data), engine=engine, pool=engine_pool)
        assert refused.value.errno == errno.EROFS and str(data) in str(refused.value)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()} == before
    app = create_app(ServerSettings(data_dir=data), engine=engine, pool=engine_pool)
    with TestClient(app) as client:
        assert [f["outer_id"] for f in _post(client, key, "faceset/getfacesets").json()["facesets"]] == ["kept"]
        assert _post(client, key, "faceset/getdetail", outer_id="kept").json()["face_tokens"] == [token]
        assert _post(client, key, "faceset/create", outer_id="rw-again").status_code == 200
    _integrity(data)
