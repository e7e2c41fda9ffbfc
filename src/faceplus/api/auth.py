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
from collections import OrderedDict, deque

from fastapi import Depends, Request

from faceplus.api.errors import ApiError, missing
from faceplus.api.forms import Params, read_params
from faceplus.store.base import ApiKeyRecord

KDF = "scrypt:n=16384,r=8,p=1"
_PROCESS_KEY = secrets.token_bytes(32)


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)


def _token() -> str:
    """192 random bits, URL-safe, never starting with ``-``: a key is passed on command lines
    (``faceplus keys revoke KEY``, ``--api-key KEY``), where a leading dash reads as an option (1 key in 64)."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def new_key(name: str = "") -> tuple[ApiKeyRecord, str]:
    """A fresh key record (secret hashed) and the plain secret, shown once."""
    api_key = _token()
    secret = _token()
    salt = secrets.token_bytes(16)
    return ApiKeyRecord(api_key, hash_secret(secret, salt), salt, KDF, time.time(), None, name), secret


class FailureLog:
    """Times of recent failed sign-ins per name (a key's digest or a client address), bounded in memory."""

    MAX_NAMES = 100_000

    def __init__(self) -> None:
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, name: str, window_s: float, now: float) -> int:
        with self._lock:
            times = self._times.get(name)
            if times is None:
                return 0
            while times and times[0] <= now - window_s:
                times.popleft()
            if not times:
                del self._times[name]
            return len(times)

    def add(self, name: str, now: float) -> None:
        with self._lock:
            times = self._times.setdefault(name, deque())
            times.append(now)
            self._times.move_to_end(name)
            while len(self._times) > self.MAX_NAMES:  # forget the least recently failing names first
                self._times.popitem(last=False)


class KeyVerifier:
    """Check api_key/api_secret against the store, caching successful checks in memory, and throttle failures.

    A wrong secret always costs one scrypt, whether the key is unknown, revoked, or known and cached, so the
    time to reject does not tell an existing key from an unknown one. Failed attempts are counted per api_key
    (existing or not) and per client address over a sliding window; past the limit, further attempts are
    refused with 403 ``CONCURRENCY_LIMIT_EXCEEDED`` without checking the secret, until the window has moved on.
    The counts are per server process.
    """

    def __init__(self) -> None:
        self._verified: dict[tuple[str, bytes], bytes] = {}
        self._lock = threading.Lock()
        self._failures = FailureLog()

    @staticmethod
    def _names(api_key: str, address: str) -> tuple[str, str]:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest(), "address:" + address

    def throttled(self, api_key: str, address: str, per_key: int, per_address: int, window_s: float) -> bool:
        """Whether this key or this client address has had too many failed attempts in the window (0 = no limit)."""
        now = time.monotonic()
        key_name, address_name = self._names(api_key, address)
        return (0 < per_key <= self._failures.count(key_name, window_s, now)) or (
            0 < per_address <= self._failures.count(address_name, window_s, now)
        )

    def failed(self, api_key: str, address: str) -> None:
        now = time.monotonic()
        for name in self._names(api_key, address):
            self._failures.add(name, now)

    def verify(self, record: ApiKeyRecord | None, secret: str) -> bool:
        if record is None or record.revoked is not None or record.kdf != KDF:
            # Spend the same time as a known key's wrong secret, so unknown keys are not distinguishable by timing.
            hash_secret(secret, b"\0" * 16)
            return False
        tag = hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()
        cache_key = (record.api_key, record.secret_hash)
        with self._lock:
            known = self._verified.get(cache_key)
        if known is not None and hmac.compare_digest(known, tag):
            return True
        # not cached, or a wrong secret for a cached key: the full scrypt check (the cost an unknown key pays)
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
    settings, address = ctx.settings, request.client.host if request.client else ""
    limits = (settings.auth_max_failures, settings.auth_max_failures_per_address, settings.auth_failure_window_s)
    if ctx.verifier.throttled(api_key, address, *limits):
        raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")  # too many failed attempts: the secret is not checked
    if not ctx.verifier.verify(ctx.store.get_key(api_key), secret):
        ctx.verifier.failed(api_key, address)
        raise ApiError(401, "AUTHENTICATION_ERROR")
    if not ctx.limiter.allow(api_key):
        raise ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")
    return api_key
