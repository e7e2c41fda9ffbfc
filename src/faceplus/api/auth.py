"""API keys: creation, salted scrypt hashes compared in constant time, and the per-request auth dependency.

A verified (key, secret) pair is remembered in memory as an HMAC under a per-process random key, so
only the first call of a key pays for scrypt; the key row is still read on every call, so a key
revoked from the command line stops working at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from faceplus.api.errors import ApiError
from faceplus.store import ApiKeyRecord

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
    """Times of recent failed (or still running) sign-ins per name (a key's digest or a client address), bounded
    in memory."""

    MAX_NAMES = 100_000

    def __init__(self) -> None:
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _count(self, name: str, window_s: float, now: float) -> int:
        times = self._times.get(name)
        if times is None:
            return 0
        while times and times[0] <= now - window_s:
            times.popleft()
        if not times:
            del self._times[name]
        return len(times)

    def count(self, name: str, window_s: float, now: float) -> int:
        with self._lock:
            return self._count(name, window_s, now)

    def over(self, limits: list[tuple[str, int]], window_s: float, now: float) -> bool:
        """Whether a name is at its limit (0: none) now."""
        with self._lock:
            return any(0 < limit <= self._count(name, window_s, now) for name, limit in limits)

    def reserve(self, limits: list[tuple[str, int]], window_s: float, now: float) -> bool:
        """Count one attempt against every name, unless one is at its limit (0: none): check and count at once,
        so concurrent attempts cannot all pass the check before any is counted."""
        with self._lock:
            if any(0 < limit <= self._count(name, window_s, now) for name, limit in limits):
                return False
            for name, _ in limits:
                times = self._times.setdefault(name, deque())
                times.append(now)
                self._times.move_to_end(name)
            while len(self._times) > self.MAX_NAMES:  # forget the least recently failing names first
                self._times.popitem(last=False)
            return True

    def forget(self, names: list[str], at: float) -> None:
        """Take back an attempt counted at ``at`` (it succeeded)."""
        with self._lock:
            for name in names:
                times = self._times.get(name)
                if times is not None:
                    with contextlib.suppress(ValueError):
                        times.remove(at)


@dataclass(frozen=True)
class SignInLimits:
    """Failed sign-ins allowed per key and per address within the window, and scrypt checks run at once."""

    per_key: int = 10
    per_address: int = 30
    window_s: float = 60.0
    concurrent_checks: int = 4
    check_wait_s: float = 5.0


class KeyVerifier:
    """Check api_key/api_secret against the store, caching successful checks in memory, and throttle failures.

    The rule (docs/SECURITY.md, "Sign-in throttling"):

    - a (key, secret) pair this process has already verified signs in with one HMAC compare, never throttled, so
      a client that was signed in before an attack on its key or address goes on working;
    - otherwise a check costs one scrypt, whether the key is unknown, revoked, or known (the time to reject does
      not tell an existing key from an unknown one), and is allowed only while the key has had fewer than
      ``per_key`` failures in the window (from any address: guessing one key's secret from many addresses);
    - failures with an unknown or revoked key also count against the client address, and an address past
      ``per_address`` gets no more checks for unknown keys (spraying made-up keys). A live key is still checked
      from that address (bounded by its own per-key count), so a shared NAT's valid keys are not locked out by
      another host behind it;
    - at most ``concurrent_checks`` scrypts run at once (an attempt waits at most ``check_wait_s`` for its turn,
      and one already over a limit is refused without waiting); with its turn, an attempt is counted before its
      scrypt runs (check and count at once) and taken back when it succeeds, so concurrent attempts cannot
      overshoot a limit, and a pair verified meanwhile by a concurrent attempt needs no scrypt of its own.

    Refusals are 403 ``CONCURRENCY_LIMIT_EXCEEDED`` without checking the secret. The counts are per process.
    """

    def __init__(self, limits: SignInLimits | None = None) -> None:
        self.limits = limits or SignInLimits()
        self._verified: dict[tuple[str, bytes], bytes] = {}
        self._lock = threading.Lock()
        self._failures = FailureLog()
        self._checks = threading.BoundedSemaphore(max(1, self.limits.concurrent_checks))

    @staticmethod
    def _names(api_key: str, address: str) -> tuple[str, str]:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest(), "address:" + address

    @staticmethod
    def _live(record: ApiKeyRecord | None) -> bool:
        return record is not None and record.revoked is None and record.kdf == KDF

    def _tag(self, secret: str) -> bytes:
        return hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()

    def cached(self, record: ApiKeyRecord | None, secret: str) -> bool:
        """Whether this pair was verified before by this process (an HMAC compare, no scrypt)."""
        if record is None or not self._live(record):
            return False
        with self._lock:
            known = self._verified.get((record.api_key, record.secret_hash))
        return known is not None and hmac.compare_digest(known, self._tag(secret))

    def sign_in(self, api_key: str, record: ApiKeyRecord | None, secret: str, address: str) -> bool:
        """Whether ``secret`` is ``record``'s (the stored row of ``api_key``), under the throttling rule above.

        Raises 403 ``CONCURRENCY_LIMIT_EXCEEDED`` when the attempt is refused unchecked.
        """
        if self.cached(record, secret):
            return True
        key_name, address_name = self._names(api_key, address)
        limits = [(key_name, self.limits.per_key)]
        if not self._live(record):
            limits.append((address_name, self.limits.per_address))
        return self._checked(limits, lambda: self.cached(record, secret), lambda: self.verify(record, secret))

    def check_secret(self, name: str, address: str, check: Callable[[], bool]) -> bool:
        """Another secret's ``check`` (the operator secret) under the rule of an unknown key: failures count
        against ``name`` and the address, check and count at once, in a scrypt turn."""
        key_name, address_name = self._names(name, address)
        limits = [(key_name, self.limits.per_key), (address_name, self.limits.per_address)]
        return self._checked(limits, lambda: False, check)

    def _checked(self, limits: list[tuple[str, int]], already: Callable[[], bool], check: Callable[[], bool]) -> bool:
        """``check()`` within the limits and a turn (403 without checking otherwise); ``already()`` is asked
        again once the turn is had (a concurrent attempt may have verified the pair meanwhile)."""
        refused = ApiError(403, "CONCURRENCY_LIMIT_EXCEEDED")  # the secret is not checked
        if self._failures.over(limits, self.limits.window_s, time.monotonic()):
            raise refused  # too many failed attempts: refused without waiting for a turn
        if not self._checks.acquire(timeout=self.limits.check_wait_s):
            raise refused  # too many sign-ins being checked at once
        try:
            if already():
                return True
            now = time.monotonic()
            if not self._failures.reserve(limits, self.limits.window_s, now):
                raise refused
            counted = [name for name, _ in limits]
            try:
                ok = check()
            except BaseException:
                self._failures.forget(counted, now)  # never checked: not a failure
                raise
            if ok:
                self._failures.forget(counted, now)
            return ok
        finally:
            self._checks.release()

    def verify(self, record: ApiKeyRecord | None, secret: str) -> bool:
        """The secret check itself (one scrypt unless cached), without throttling."""
        if not self._live(record):
            # Spend the same time as a known key's wrong secret, so unknown keys are not distinguishable by timing.
            hash_secret(secret, b"\0" * 16)
            return False
        assert record is not None
        tag = self._tag(secret)
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
