"""Faces placed or taken out by hand: updateface (a group, a new group or none) and deleteface."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import bad, echo, plain
from faceplus.api.services.facealbums.placement import is_group
from faceplus.store import GROUP_NOT_GROUPED, AlbumRecord

#: updateface's ``new_group_id`` for "a new group" (any letter case).
CREATE_NEW_GROUP = "CreateNewGroup"


def update_album_faces(
    ctx: ApiContext, tenant: str, album: AlbumRecord, tokens: list[str], target: str
) -> dict[str, Any]:
    """updateface: ``tokens`` put in group ``target``, a new group (``CreateNewGroup``) or none (-1), manually (a
    later grouping keeps them there)."""
    present = {f.face_token for f in ctx.store.albums.faces(tenant, album.facealbum_token, tokens=tokens)}
    out: dict[str, Any] = {"facealbum_token": album.facealbum_token}
    if target.lower() == CREATE_NEW_GROUP.lower():
        target = ctx.store.albums.new_group_ids(tenant, album.facealbum_token, 1)[0] if present else ""
        if target:
            out["group_id"] = target
    elif target != GROUP_NOT_GROUPED:
        if not target.isdigit() or not is_group(target):
            raise bad("new_group_id")
        if not any(f.group_id == target for f in ctx.store.albums.faces(tenant, album.facealbum_token)):
            raise plain("INVALID_GROUP_ID")
    changed = (
        ctx.store.albums.set_groups(
            tenant, album.facealbum_token, {t: (target, None) for t in tokens if t in present}, manual=True
        )
        if present
        else []
    )
    out["face_tokens_success"] = ",".join(changed)
    out["failure_detail"] = [
        {"face_token": echo(t), "reason": "INVALID_FACE_TOKEN"} for t in dict.fromkeys(tokens) if t not in present
    ]
    return out


def delete_album_faces(
    ctx: ApiContext, tenant: str, album: AlbumRecord, tokens: list[str] | None, image_id: str | None
) -> dict[str, Any]:
    """deleteface: ``tokens``, or every face of ``image_id`` (400 ``INVALID_IMAGE_ID`` when it has none), out of
    the album."""
    if tokens is None:
        assert image_id is not None
        tokens = [
            f.face_token for f in ctx.store.albums.faces(tenant, album.facealbum_token, image_id=image_id.strip())
        ]
        if not tokens:
            raise plain("INVALID_IMAGE_ID")
    removed = ctx.store.albums.delete_faces(tenant, album.facealbum_token, tokens)
    gone = set(removed)
    return {
        "facealbum_token": album.facealbum_token,
        "face_removed_count": len(removed),
        "face_removed_detail": removed,
        "face_failure_detail": [
            {"face_token": echo(t), "reason": "INVALID_FACE_TOKEN"} for t in dict.fromkeys(tokens) if t not in gone
        ],
    }
