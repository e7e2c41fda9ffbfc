"""Key management over HTTP (the console's Keys page): operator-only, never for a plain API key."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from faceplus.operator import check_operator_secret, new_operator_secret, secret_file

from .conftest import Api


def _admin(api: Api, route: str, as_key: str | None = "a", **fields: str) -> tuple[int, dict]:
    data = dict(fields)
    if as_key is not None:
        data.update(api.keys[as_key])
    r = api.client.post(f"/console/v1/admin/keys/{route}", data=data)
    return r.status_code, r.json()


def test_a_plain_api_key_cannot_manage_keys(api: Api) -> None:
    secret_file(api.settings.data_dir).unlink(missing_ok=True)
    # no operator secret made on this server: off for everyone
    status, body = _admin(api, "list", operator_secret="anything")
    assert (status, body["error_message"]) == (403, "OPERATOR_DISABLED")
    operator_secret = new_operator_secret(api.settings.data_dir)
    # a valid API key without the operator secret, or with a wrong one: refused, nothing listed or made
    status, body = _admin(api, "list")
    assert (status, body["error_message"]) == (400, "MISSING_ARGUMENTS: operator_secret")
    status, body = _admin(api, "create", operator_secret=operator_secret + "x", name="sneaky")
    assert (status, body["error_message"]) == (403, "OPERATOR_SECRET_INVALID")
    status, body = _admin(api, "revoke", as_key="a", operator_secret="", target_api_key=api.keys["b"]["api_key"])
    assert (status, body["error_message"]) == (400, "MISSING_ARGUMENTS: operator_secret")
    assert api.ok("faceset/getfacesets", as_key="b")  # b still works
    assert all(k.name != "sneaky" for k in api.ctx.store.keys.all())
    # the operator secret without an API key: refused as every route refuses it
    status, body = _admin(api, "list", as_key=None, operator_secret=operator_secret)
    assert (status, body["error_message"]) == (400, "MISSING_ARGUMENTS: api_key")


def test_the_operator_lists_creates_and_revokes(api: Api) -> None:
    operator_secret = new_operator_secret(api.settings.data_dir)
    status, made = _admin(api, "create", operator_secret=operator_secret, name="kiosk")
    assert status == 200 and made["name"] == "kiosk" and made["revoked"] is None
    new = {"api_key": made["api_key"], "api_secret": made["api_secret"]}
    assert api.client.post("/facepp/v3/faceset/getfacesets", data=new).status_code == 200
    status, listed = _admin(api, "list", operator_secret=operator_secret)
    assert status == 200 and listed["keys"][0]["api_key"] == made["api_key"]  # newest first
    assert {api.keys["a"]["api_key"], api.keys["b"]["api_key"]} <= {k["api_key"] for k in listed["keys"]}
    assert all("api_secret" not in k and "secret_hash" not in k for k in listed["keys"])
    status, body = _admin(api, "revoke", operator_secret=operator_secret, target_api_key=made["api_key"])
    assert (status, body["revoked"]) == (200, True)
    r = api.client.post("/facepp/v3/faceset/getfacesets", data=new)
    assert r.status_code == 401 and r.json()["error_message"] == "AUTHENTICATION_ERROR"
    status, body = _admin(api, "revoke", operator_secret=operator_secret, target_api_key=made["api_key"])
    assert (status, body["error_message"]) == (400, "INVALID_API_KEY: target_api_key")
    # a new operator secret replaces the old one at once
    newer = new_operator_secret(api.settings.data_dir)
    assert _admin(api, "list", operator_secret=operator_secret)[1]["error_message"] == "OPERATOR_SECRET_INVALID"
    assert _admin(api, "list", operator_secret=newer)[0] == 200


def test_operator_secret_command(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "faceplus", "operator-secret", "--data-dir", str(tmp_path)]
    made = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.split("operator_secret:")[1].strip()
    path = secret_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and secret not in path.read_text()
    assert check_operator_secret(tmp_path, secret) and not check_operator_secret(tmp_path, secret + "x")
    off = subprocess.run([*run, "--off"], capture_output=True, text=True, timeout=120)
    assert off.returncode == 0 and not path.exists() and not check_operator_secret(tmp_path, secret)
