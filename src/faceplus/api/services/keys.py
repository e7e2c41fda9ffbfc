"""API key management for the operator (the console's Keys page): list, create, revoke. Secrets are never listed:
a new key's secret is answered once, by create."""

from __future__ import annotations

import time
from typing import Any

from faceplus.api.auth import new_key
from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.store import ApiKeyRecord


def key_json(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "api_key": record.api_key,
        "name": record.name,
        "created": int(record.created),
        "revoked": None if record.revoked is None else int(record.revoked),
    }


def list_keys_reply(ctx: ApiContext) -> dict[str, Any]:
    """Every API key, newest first."""
    keys = sorted(ctx.store.keys.all(), key=lambda k: k.created, reverse=True)
    return {"keys": [key_json(k) for k in keys]}


def create_key_reply(ctx: ApiContext, name: str) -> dict[str, Any]:
    """A new API key named ``name``, with its secret (answered this once)."""
    record, secret = new_key(name)
    ctx.store.keys.add(record)
    return {**key_json(record), "api_secret": secret}


def revoke_key_reply(ctx: ApiContext, api_key: str) -> dict[str, Any]:
    """``api_key`` revoked (it stops working at once); 400 ``INVALID_API_KEY`` when there is no such key."""
    if not ctx.store.keys.revoke(api_key, time.time()):
        raise ApiError(400, "INVALID_API_KEY: target_api_key")
    return {"api_key": api_key, "revoked": True}
