"""API keys: creation, salted scrypt hashes compared in constant time, and the per-request auth dependency.

A verified (key, secret) pair is remembered in memory as an HMAC under a per-process random key, so
only the first call of a key pays for scrypt; the key row is still read on every call, so a key
revoked from the command line stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from fastapi import Depends, Request

from faceplus.api.errors import ApiError, missing
from faceplus.api.forms import Params, read_params
from faceplus.store.base import ApiKeyRecord

KDF = "scrypt:n=16384,r=8,p=1"
_PROCESS_KEY = secrets.token_bytes(32)


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)


def new_key(name: str = "") -> tuple[ApiKeyRecord, str]:
    """A fresh key record (secret hashed) and the plain secret, shown once."""
    api_key = secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_bytes(16)
    return ApiKeyRecord(api_key, hash_secret(secret, salt), salt, KDF, time.time(), None, name), secret


class KeyVerifier:
    """Check api_key/api_secret against the store, caching successful checks in memory."""

    def __init__(self) -> None:
        self._verified: dict[tuple[str, bytes], bytes] = {}
        self._lock = threading.Lock()

    def verify(self, record: ApiKeyRecord | None, secret: str) -> bool:
        if record is None or record.revoked is not None or record.kdf != KDF:
            # Spend comparable time so unknown keys are not distinguishable by timing.
            hash_secret(secret, b"\0" * 16)
            return False
        tag = hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()
        cache_key = (record.api_key, record.secret_hash)
        with self._lock:
            known = self._verified.get(cache_key)
        if known is not None:
            return hmac.compare_digest(known, tag)
        ok = hmac.compare_digest(hash_secret(secret, record.salt), record.secret_hash)
        if ok:
            with self._lock:
                self._verified[cache_key] = tag
        return ok


def authenticate(request: Request, params: Params = Depends(read_params)) -> str:  # noqa: B008
    """The tenant (api_key) of a request; then the per-key rate cap (403).

    As Face++: a missing (or empty) ``api_key`` or ``api_secret`` is 400 ``MISSING_ARGUMENTS: <name>``
    (``api_key`` named first when both are missing); a wrong pair is 401 ``AUTHENTICATION_ERROR``.
    """
    ctx = request.app.state.ctx
    api_key, secret = params.str("api_key"), params.str("api_secret")
    if not api_key:
        raise missing("api_key")
    if not secret:
        raise missing("api_secret")
    if not ctx.verifier.verify(ctx.store.get_key(api_key), secret):
        raise ApiError(401, "AUTHENTICATION_ERROR")
    if not ctx.limiter.allow(api_key):
        raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")
    return api_key
