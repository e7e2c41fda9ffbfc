"""Two `faceplus serve` processes on different ports, one PostgreSQL database and no state of their own:
faces added through either are found at once through the other, concurrently, none lost or duplicated;
an async task queued on one is visible and finished through the other."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .conftest import database_url, drop_schemas, schema_url
from .test_api_http import SERVER, ServerProcess


class DbServer(ServerProcess):
    """A ``serve`` process whose only configuration is FACEPLUS_DATABASE_URL (and an empty data folder)."""

    def __init__(self, url: str, data_dir: Path, log: Path) -> None:
        super().__init__(data_dir, log)
        self.extra_env = {"FACEPLUS_DATABASE_URL": url}


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[tuple[DbServer, DbServer, dict]]:

    base = database_url()
    schema = f"test_workers_{os.getpid()}"
    url = schema_url(base, schema)
    folder = tmp_path_factory.mktemp("workers")
    servers = [DbServer(url, folder / f"data{i}", folder / f"server{i}.log") for i in range(2)]
    with ThreadPoolExecutor(2) as pool:  # both load their models at once
        list(pool.map(lambda s: s.start(), servers))
    out = subprocess.run(
        [*SERVER, "keys", "create"], capture_output=True, text=True, env={**os.environ, "FACEPLUS_DATABASE_URL": url}
    )
    assert out.returncode == 0, out.stderr
    key = {
        "api_key": re.search(r"^api_key:\s+(\S+)$", out.stdout, re.M).group(1),  # type: ignore[union-attr]
        "api_secret": re.search(r"^api_secret:\s+(\S+)$", out.stdout, re.M).group(1),  # type: ignore[union-attr]
    }
    yield servers[0], servers[1], key
    for s in servers:
        s.stop()
    drop_schemas(base, [schema])


def _post(server: ServerProcess, key: dict, route: str, files: dict | None = None, **fields: object) -> dict:
    r = httpx.post(
        f"{server.base}/facepp/v3/{route}", data={**key, **{k: str(v) for k, v in fields.items()}}, files=files,
        timeout=60,
    )  # fmt: skip
    assert r.status_code == 200, (route, r.status_code, r.text)
    return r.json()


def test_adds_through_one_worker_are_found_through_the_other(workers, lfw_people) -> None:
    a, b, key = workers
    assert "database: postgresql://" in a.log.read_text()
    photos = [p[0] for _, p in lfw_people[:16]]
    # Detect through both workers at once; every token is usable through either.
    with ThreadPoolExecutor(2) as pool:
        tokens = list(
            pool.map(
                lambda i: _post((a, b)[i % 2], key, "detect", files={"image_file": photos[i].read_bytes()})["faces"][0][
                    "face_token"
                ],
                range(len(photos)),
            )
        )
    assert len(set(tokens)) == len(tokens)
    faceset = _post(b, key, "faceset/create", outer_id="shared")["faceset_token"]

    errors: list[str] = []

    def add_then_find(mine: list[str], via: ServerProcess, other: ServerProcess) -> None:
        for token in mine:
            added = _post(via, key, "faceset/addface", faceset_token=faceset, face_tokens=token)
            if added["face_added"] != 1:
                errors.append(f"{token} not added: {added}")
            # Acknowledged by one worker -> the other finds it at once, as its own nearest face.
            hit = _post(other, key, "search", faceset_token=faceset, face_token=token)["results"][0]
            if hit["face_token"] != token:
                errors.append(f"{token} not found through the other worker: {hit}")

    threads = [
        threading.Thread(target=add_then_find, args=(tokens[0::2], a, b)),
        threading.Thread(target=add_then_find, args=(tokens[1::2], b, a)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors

    for server in (a, b):
        detail = _post(server, key, "faceset/getdetail", faceset_token=faceset)
        assert detail["face_count"] == len(tokens)
        assert sorted(detail["face_tokens"]) == sorted(tokens)  # none lost, none twice

    # Adding the same tokens again through both workers at once adds nothing.
    with ThreadPoolExecutor(2) as pool:
        again = list(
            pool.map(
                lambda s: _post(s, key, "faceset/addface", faceset_token=faceset, face_tokens=",".join(tokens[:5])),
                (a, b),
            )
        )
    assert [r["face_added"] for r in again] == [0, 0] and again[0]["face_count"] == len(tokens)


def test_async_task_queued_on_one_worker_finishes_through_the_other(workers, lfw_people) -> None:
    a, b, key = workers
    faceset = _post(a, key, "faceset/create", outer_id="tasks")["faceset_token"]
    token = _post(a, key, "detect", files={"image_file": lfw_people[20][1][0].read_bytes()})["faces"][0]["face_token"]
    task = _post(a, key, "faceset/async/addface", faceset_token=faceset, face_tokens=token)["task_id"]
    deadline = time.monotonic() + 30
    while (status := _post(b, key, "faceset/async/task_status", task_id=task))["status"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["status"] == 1 and status["face_added"] == 1
    assert _post(b, key, "search", faceset_token=faceset, face_token=token)["results"][0]["face_token"] == token
