"""The operator's secret: what lets the web console's keys page list, create and revoke API keys.

An API key is a tenant: it must never manage other keys. The operator (whoever can run ``faceplus`` on the
server's data folder, the same person who runs ``faceplus keys create``) makes a secret with
``faceplus operator-secret``; it is stored only as a salted scrypt hash in ``<data folder>/operator.json``
(mode 0600) and read on every check, so making a new one replaces the old at once and deleting the file turns
key management over HTTP off. Without the file the admin routes refuse every call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

FILE_NAME = "operator.json"
KDF = "scrypt:n=16384,r=8,p=1"
#: Mode of the file (owner read/write only).
FILE_MODE = 0o600


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)


def secret_file(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def new_operator_secret(data_dir: Path) -> str:
    """Make a fresh operator secret, store its hash (replacing any earlier one) and return it, shown once."""
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = {"kdf": KDF, "salt": salt.hex(), "hash": _hash(secret, salt).hex(), "created": time.time()}
    path = secret_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return secret


def operator_enabled(data_dir: Path) -> bool:
    return secret_file(data_dir).is_file()


def check_operator_secret(data_dir: Path, secret: str) -> bool:
    """Whether ``secret`` is the operator's (False when none was made, or the file cannot be read)."""
    try:
        record = json.loads(secret_file(data_dir).read_text())
        if record.get("kdf") != KDF:
            return False
        salt, expected = bytes.fromhex(record["salt"]), bytes.fromhex(record["hash"])
    except (OSError, ValueError, KeyError, TypeError):
        _hash(secret, b"\0" * 16)  # the same time as a real check
        return False
    return hmac.compare_digest(_hash(secret, salt), expected)
