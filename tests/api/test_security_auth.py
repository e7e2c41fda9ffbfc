"""Authentication throttling and timing: failed sign-ins are limited per api_key and per client address
with 403 CONCURRENCY_LIMIT_EXCEEDED, and a wrong secret costs the same whether the key exists or not."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from faceplus.api import auth
from faceplus.api.auth import KeyVerifier, new_key

from .conftest import Api

ROUTE = "/facepp/v3/faceset/getfacesets"


def sign_in(client: TestClient, key: str, secret: str) -> tuple[int, str]:
    r = client.post(ROUTE, data={"api_key": key, "api_secret": secret})
    return r.status_code, r.json().get("error_message", "")


def from_address(api: Api, host: str) -> TestClient:
    """A second client on the same app that connects from ``host``."""
    return TestClient(api.client.app, client=(host, 40000))


def test_failures_are_throttled_per_key(make_api: Callable[..., Api]) -> None:
    api = make_api(auth_max_failures=3, auth_max_failures_per_address=0, auth_failure_window_s=1.5)
    a, b = api.add_key("a"), api.add_key("b")
    for _ in range(3):
        assert sign_in(api.client, a["api_key"], "wrong") == (401, "AUTHENTICATION_ERROR")
    # the key is locked: even its right secret is refused without being checked, from any address
    assert sign_in(api.client, a["api_key"], a["api_secret"]) == (403, "CONCURRENCY_LIMIT_EXCEEDED")
    assert sign_in(from_address(api, "10.9.9.9"), a["api_key"], a["api_secret"]) == (403, "CONCURRENCY_LIMIT_EXCEEDED")
    assert sign_in(api.client, b["api_key"], b["api_secret"]) == (200, "")  # another key is not affected
    # an unknown key is throttled the same way, so the reply does not tell it from an existing one
    for _ in range(3):
        assert sign_in(api.client, "no-such-key", "wrong") == (401, "AUTHENTICATION_ERROR")
    assert sign_in(api.client, "no-such-key", "wrong") == (403, "CONCURRENCY_LIMIT_EXCEEDED")
    time.sleep(1.6)  # the window moves on
    assert sign_in(api.client, a["api_key"], a["api_secret"]) == (200, "")


def test_failures_are_throttled_per_address(make_api: Callable[..., Api]) -> None:
    """An address spraying made-up keys is refused after ``per_address`` failures, without a scrypt; a live key
    behind the same address (a shared NAT) still signs in, though it was never used before."""
    api = make_api(auth_max_failures=0, auth_max_failures_per_address=4, auth_failure_window_s=60.0)
    a, b = api.add_key("a"), api.add_key("b")
    attacker, other = from_address(api, "203.0.113.7"), from_address(api, "198.51.100.8")
    for n in range(4):  # a different made-up key each time: the per-key count never builds up
        assert sign_in(attacker, f"guess-{n}", "wrong") == (401, "AUTHENTICATION_ERROR")
    assert sign_in(attacker, "guess-5", "wrong") == (403, "CONCURRENCY_LIMIT_EXCEEDED")
    assert sign_in(attacker, a["api_key"], a["api_secret"]) == (200, "")  # one was locked out for 60 s
    assert sign_in(attacker, b["api_key"], "wrong") == (401, "AUTHENTICATION_ERROR")  # a live key is checked
    assert sign_in(attacker, b["api_key"], b["api_secret"]) == (200, "")
    assert sign_in(other, "guess-6", "wrong") == (401, "AUTHENTICATION_ERROR")  # another address is not affected


def test_a_live_key_is_still_bounded_per_key_behind_a_throttled_address(make_api: Callable[..., Api]) -> None:
    """Wrong secrets for a live key from a throttled address stop at the key's own limit."""
    api = make_api(auth_max_failures=3, auth_max_failures_per_address=2, auth_failure_window_s=60.0)
    a = api.add_key("a")
    attacker = from_address(api, "203.0.113.9")
    for n in range(2):
        assert sign_in(attacker, f"guess-{n}", "wrong") == (401, "AUTHENTICATION_ERROR")
    for _ in range(3):
        assert sign_in(attacker, a["api_key"], "wrong") == (401, "AUTHENTICATION_ERROR")
    assert sign_in(attacker, a["api_key"], "wrong") == (403, "CONCURRENCY_LIMIT_EXCEEDED")


def test_a_pair_verified_before_is_never_throttled(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client signed in before an attack on its key goes on working, at the cost of one HMAC (no scrypt)."""
    api = make_api(auth_max_failures=3, auth_max_failures_per_address=0, auth_failure_window_s=60.0)
    a = api.add_key("a")
    assert sign_in(api.client, a["api_key"], a["api_secret"]) == (200, "")
    for _ in range(3):
        assert sign_in(from_address(api, "203.0.113.10"), a["api_key"], "wrong") == (401, "AUTHENTICATION_ERROR")
    assert sign_in(api.client, a["api_key"], "wrong") == (403, "CONCURRENCY_LIMIT_EXCEEDED")
    calls: list[bytes] = []
    monkeypatch.setattr(auth, "hash_secret", lambda secret, salt: calls.append(salt) or b"")
    assert sign_in(api.client, a["api_key"], a["api_secret"]) == (200, "")
    assert calls == []


def scrypt_counter(monkeypatch: pytest.MonkeyPatch, hold_s: float) -> dict[str, int]:
    """Count the scrypt checks run, and the most running at once (each held ``hold_s`` longer)."""
    seen = {"calls": 0, "running": 0, "most": 0}
    lock = threading.Lock()
    real = auth.hash_secret

    def counted(secret: str, salt: bytes) -> bytes:
        with lock:
            seen["calls"] += 1
            seen["running"] += 1
            seen["most"] = max(seen["most"], seen["running"])
        try:
            time.sleep(hold_s)
            return real(secret, salt)
        finally:
            with lock:
                seen["running"] -= 1

    monkeypatch.setattr(auth, "hash_secret", counted)
    return seen


def burst(client: TestClient, keys: list[str]) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(lambda key: sign_in(client, key, "wrong"), keys))


def test_concurrent_failures_cannot_overshoot_the_limit(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 wrong sign-ins at once from one address under a limit of 10: at most 10 scrypts run (the check and the
    count were apart, and 57 scrypts ran under a limit of 30)."""
    api = make_api(auth_max_failures=0, auth_max_failures_per_address=10, auth_max_concurrent_checks=40)
    seen = scrypt_counter(monkeypatch, 0.2)
    replies = burst(from_address(api, "203.0.113.11"), [f"made-up-{n}" for n in range(40)])
    assert seen["calls"] <= 10, f"{seen['calls']} scrypts ran under a limit of 10"
    assert replies.count((401, "AUTHENTICATION_ERROR")) == seen["calls"]
    assert replies.count((403, "CONCURRENCY_LIMIT_EXCEEDED")) == 40 - seen["calls"]


def test_scrypt_checks_run_a_bounded_number_at_once(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(auth_max_failures=0, auth_max_failures_per_address=0, auth_max_concurrent_checks=2)
    seen = scrypt_counter(monkeypatch, 0.1)
    replies = burst(api.client, [f"made-up-{n}" for n in range(12)])
    assert replies == [(401, "AUTHENTICATION_ERROR")] * 12
    assert seen["calls"] == 12 and seen["most"] <= 2, seen


def test_throttling_can_be_turned_off(make_api: Callable[..., Api]) -> None:
    api = make_api(auth_max_failures=0, auth_max_failures_per_address=0)
    a = api.add_key("a")
    for _ in range(15):
        assert sign_in(api.client, a["api_key"], "wrong") == (401, "AUTHENTICATION_ERROR")
    assert sign_in(api.client, a["api_key"], a["api_secret"]) == (200, "")


def test_default_settings_throttle(api: Api) -> None:
    """The defaults (10 per key, 30 per address, 60 s) are on: the 11th wrong secret for a key is refused."""
    assert api.settings.auth_max_failures == 10
    replies = [sign_in(from_address(api, "192.0.2.10"), "default-probe", "wrong")[0] for _ in range(11)]
    assert replies == [401] * 10 + [403]


def test_a_wrong_secret_costs_one_scrypt_whether_the_key_exists_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a cached key's wrong secret was an HMAC compare (~6 ms over HTTP), an unknown key a scrypt (~120 ms)."""
    calls: list[bytes] = []
    real = auth.hash_secret

    def counted(secret: str, salt: bytes) -> bytes:
        calls.append(salt)
        return real(secret, salt)

    monkeypatch.setattr(auth, "hash_secret", counted)
    verifier = KeyVerifier()
    record, secret = new_key("k")
    revoked = replace(new_key("r")[0], revoked=1.0)
    calls.clear()  # new_key hashed the secrets
    assert verifier.verify(record, secret) and len(calls) == 1  # first check of a key: scrypt, then cached
    assert verifier.verify(record, secret) and len(calls) == 1  # cached: no scrypt for the right secret
    for candidate in (record, None, revoked):
        calls.clear()
        assert not verifier.verify(candidate, "wrong")
        assert len(calls) == 1, candidate

    def median_ms(candidate) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            verifier.verify(candidate, "wrong")
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000

    known, unknown = median_ms(record), median_ms(None)
    assert 1 / 3 < known / unknown < 3, (known, unknown)


def test_keys_and_secrets_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key is typed on command lines (``faceplus keys revoke KEY``): a leading dash would read as an option, as it
    did for one key in 64 (CI failed on ``keys revoke -W7Ry...``)."""
    monkeypatch.setattr(auth, "hash_secret", lambda secret, salt: b"")  # the KDF is not what is tested
    made = [auth.new_key() for _ in range(3000)]
    assert not any(record.api_key.startswith("-") or secret.startswith("-") for record, secret in made)
    assert len({record.api_key for record, _ in made}) == 3000 and all(len(r.api_key) == 32 for r, _ in made)


def test_a_burst_of_first_sign_ins_of_one_key_all_get_in(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 clients of one live key start at once (a restart): all sign in though the key's limit is 3, and the
    pair is checked by scrypt at most once per turn, not once per client."""
    api = make_api(auth_max_failures=3, auth_max_failures_per_address=3, auth_max_concurrent_checks=2)
    a = api.add_key("a")
    seen = scrypt_counter(monkeypatch, 0.1)
    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda _: sign_in(api.client, a["api_key"], a["api_secret"]), range(12)))
    assert replies == [(200, "")] * 12
    assert seen["calls"] <= 2, seen


def test_other_secrets_are_throttled_like_unknown_keys() -> None:
    """The operator secret's checks (routes_admin) share the rule: failures per name and per address, refused
    unchecked past a limit, a success not counted."""
    from faceplus.api.auth import SignInLimits
    from faceplus.api.errors import ApiError

    verifier = KeyVerifier(SignInLimits(per_key=2, per_address=3, window_s=60.0))
    checks: list[bool] = []

    def check(result: bool) -> Callable[[], bool]:
        return lambda: checks.append(result) or result

    assert verifier.check_secret("operator-secret", "203.0.113.20", check(True))
    assert not verifier.check_secret("operator-secret", "203.0.113.20", check(False))
    assert not verifier.check_secret("operator-secret", "203.0.113.21", check(False))
    with pytest.raises(ApiError, match="CONCURRENCY_LIMIT_EXCEEDED"):
        verifier.check_secret("operator-secret", "203.0.113.22", check(True))  # 2 failures for the name
    assert checks == [True, False, False]
