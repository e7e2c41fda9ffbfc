"""The audit trail: one middleware records every authenticated call that creates, changes or erases data.

Which calls: every authenticated API route except the read-only ones listed in :data:`READ_ONLY` (so a new
route is audited unless someone declares it a read). Detect, compare and search are audited because they store
new face tokens. What is kept per call: the time, the api_key, the route, the object ids it named or got back
(face tokens, FaceSet tokens and outer_ids, FaceAlbum tokens, task ids, image ids, user ids, biz tokens) and the
result (``ok`` or the Face++ ``error_message``) with the HTTP status. Never an image, an embedding, a name, tags,
user_data or any other value: ids are taken from an allow-list of field names only.

The entry is written after the reply has gone (the call's latency does not include it); a failure to write it
is logged. Async tasks are recorded when submitted (their task_id and the objects they name) and again when they
finish, as route ``task/<kind>`` with their outcome and the ids they changed
(:class:`faceplus.api.services.tasks.TaskRunner`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

import anyio.to_thread

from faceplus.api.context import ApiContext
from faceplus.store import AuditEntry, Store

# ASGI's types, spelled as the ASGI spec does: the middleware speaks plain ASGI and imports no web framework.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("faceplus.api.audit")

#: Where the authenticated tenant is left in the ASGI scope (by :func:`faceplus.api.deps.admitted_tenant`).
TENANT_KEY = "faceplus.tenant"
#: Last path segments of routes that only read (not audited).
READ_ONLY = frozenset(
    {
        "getdetail",
        "getfacesets",
        "task_status",
        "analyze",
        "getfacealbums",
        "getalbumdetail",
        "getfacedetail",
        "getimagedetail",
        "findcandidate",
        "addimagetaskquery",
        "groupfacetaskquery",
        "searchimagetaskquery",
    }
)
#: Field name (in the request or anywhere in the reply) -> the kind of object id it carries.
ID_FIELDS = {
    "face_token": "face_tokens",
    "face_tokens": "face_tokens",
    "face_token1": "face_tokens",
    "face_token2": "face_tokens",
    "erased_face_tokens": "face_tokens",
    "face_removed_detail": "face_tokens",
    "faceset_token": "faceset_tokens",
    "outer_id": "outer_ids",
    "new_outer_id": "outer_ids",
    "facealbum_token": "facealbum_tokens",
    "task_id": "task_ids",
    "image_id": "image_ids",
    "image_id1": "image_ids",
    "image_id2": "image_ids",
    "user_id": "user_ids",
    "biz_token": "biz_tokens",
}
#: Reply subtrees that hold no object this call created or changed (search hits, analysis values).
_SKIP_REPLY = frozenset({"results", "thresholds", "landmark", "attributes", "candidate_groups", "search_result"})
#: Bounds: characters per id, ids per kind, reply bytes read.
ID_MAX_CHARS = 128
IDS_PER_KIND = 1000
REPLY_MAX_BYTES = 1 << 20
#: A refused call's ids are whatever the client wrote, unchecked: a few per kind say what it named.
REFUSED_IDS_PER_KIND = 10
#: Characters of ids one entry may hold in all (a removeface of 1,000 face tokens needs 32,000); the rest are
#: counted under :data:`OMITTED`, so one request can never write more than about this much to the trail.
ENTRY_MAX_CHARS = 64 * 1024
#: The kind under which an entry says how many ids it left out (one decimal string).
OMITTED = "omitted_ids"


def audited(route: str) -> bool:
    return route.rsplit("/", 1)[-1] not in READ_ONLY


def _values(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from (v.strip() for v in value.split(",") if v.strip())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                yield item
            elif isinstance(item, dict) and isinstance(item.get("face_token"), str):
                yield item["face_token"]


def _walk_reply(node: Any, found: dict[str, set[str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SKIP_REPLY:
                continue
            kind = ID_FIELDS.get(key)
            if kind is not None and isinstance(value, (str, list)):
                found.setdefault(kind, set()).update(_values(value))
            elif isinstance(value, (dict, list)):
                _walk_reply(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk_reply(item, found)


def object_ids(fields: Mapping[str, str | list[Any]], reply: Any, refused: bool = False) -> dict[str, list[str]]:
    """The ids a call named (request fields) or got back (reply), by kind; sorted and bounded.

    Each id is cut to ``ID_MAX_CHARS``; a kind keeps ``IDS_PER_KIND`` ids (``REFUSED_IDS_PER_KIND`` for a
    ``refused`` call) and the whole entry ``ENTRY_MAX_CHARS`` characters; how many were left out is recorded
    under ``OMITTED``.
    """
    found: dict[str, set[str]] = {}
    for name, value in fields.items():
        kind = ID_FIELDS.get(name)
        if kind is not None:
            found.setdefault(kind, set()).update(_values(value))
    _walk_reply(reply, found)
    per_kind = REFUSED_IDS_PER_KIND if refused else IDS_PER_KIND
    budget, omitted = ENTRY_MAX_CHARS, 0
    kept: dict[str, list[str]] = {}
    for kind, values in sorted(found.items()):
        ids = sorted({v[:ID_MAX_CHARS] for v in values})
        omitted += max(0, len(ids) - per_kind)
        for value in ids[:per_kind]:
            if len(value) > budget:
                omitted += 1
                continue
            budget -= len(value)
            kept.setdefault(kind, []).append(value)
    if omitted:
        kept[OMITTED] = [str(omitted)]
    return kept


class AuditMiddleware:
    """Pure ASGI middleware: watches the reply's status and JSON body, then writes one :class:`AuditEntry`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not audited(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and len(body) < REPLY_MAX_BYTES:
                body.extend(message.get("body", b"")[: REPLY_MAX_BYTES - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            tenant = scope.get(TENANT_KEY)
            if tenant is not None:  # authenticated: anything else is not a call on anyone's data
                await self._record(scope, tenant, status, bytes(body))

    @staticmethod
    async def _record(scope: Scope, tenant: str, status: int, body: bytes) -> None:
        try:
            reply = json.loads(body) if body else {}
        except ValueError:
            reply = {}
        params = scope.get("faceplus.params")
        fields = dict(params.fields) if params is not None else {}
        error = reply.get("error_message") if isinstance(reply, dict) else None
        entry = AuditEntry(
            time=time.time(),
            api_key=tenant,
            route=scope.get("path", ""),
            object_ids=object_ids(fields, reply if status == 200 else {}, refused=status != 200),
            status=status or 500,
            result="ok" if status == 200 else str(error or "INTERNAL_ERROR"),
        )
        store: Store = scope["app"].state.ctx.store
        try:
            await anyio.to_thread.run_sync(store.audit.add, entry)
        except Exception:
            log.exception("could not record the audit entry of %s by %s", entry.route, tenant)


def prune_audit_log(ctx: ApiContext) -> int:
    """Delete audit entries past ``audit_retention_days`` (0: keep forever); how many (the sweeper calls it)."""
    days = ctx.settings.audit_retention_days
    if days <= 0:
        return 0
    return ctx.store.audit.prune(time.time() - days * 86400.0)
