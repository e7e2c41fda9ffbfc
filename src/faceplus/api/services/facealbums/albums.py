"""An album and what it holds: createalbum, deletealbum, getfacealbums and the detail queries."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import bad, plain
from faceplus.api.services.faces import new_token
from faceplus.store import GROUP_UNGROUPED, AlbumFace, AlbumQuotaExceeded, AlbumRecord


def face_json(face: AlbumFace) -> dict[str, Any]:
    """A face as getalbumdetail lists it."""
    return {
        "face_token": face.face_token,
        "group_id": face.group_id,
        "image_id": face.image_id,
        "face_rectangle": face.face_rectangle,
    }


def album_by_token(ctx: ApiContext, tenant: str, token: str) -> AlbumRecord:
    """The tenant's album ``token``, or 400 ``INVALID_FACEALBUM_TOKEN``."""
    album = ctx.store.albums.get(tenant, token)
    if album is None:
        raise plain("INVALID_FACEALBUM_TOKEN")
    return album


def create_album(ctx: ApiContext, tenant: str) -> dict[str, Any]:
    """createalbum: a new empty album (400 ``FACEALBUM_QUOTA_EXCEEDED`` past the key's quota)."""
    token = new_token()
    try:
        ctx.store.albums.create(tenant, token, ctx.now(), ctx.settings.max_facealbums_per_key)
    except AlbumQuotaExceeded:
        raise plain("FACEALBUM_QUOTA_EXCEEDED") from None
    return {"facealbum_token": token}


def delete_album(ctx: ApiContext, tenant: str, album: AlbumRecord, check_empty: bool) -> dict[str, Any]:
    """deletealbum: the album with its faces (refused while it has faces when ``check_empty``)."""
    if check_empty and album.face_count > 0:
        raise plain("FACEALBUM_NOT_EMPTY")
    ctx.store.albums.delete(tenant, album.facealbum_token)
    return {"facealbum_token": album.facealbum_token}


def list_albums(ctx: ApiContext, tenant: str, start: int) -> dict[str, Any]:
    """getfacealbums: a page of this key's albums, oldest first, from position ``start`` (1-based)."""
    page = ctx.settings.getfacesets_page
    found = ctx.store.albums.of_tenant(tenant, start - 1, page + 1)
    out: dict[str, Any] = {"facealbums": [{"facealbum_token": a.facealbum_token} for a in found[:page]]}
    if len(found) > page:  # absent on the last page
        out["next"] = str(start + page)
    return out


def album_detail(ctx: ApiContext, tenant: str, album: AlbumRecord, start: str | None) -> dict[str, Any]:
    """getalbumdetail: a page of the album's faces from the face token ``start`` (400 when it is not one)."""
    page = ctx.settings.getdetail_page
    try:
        faces = ctx.store.albums.faces(
            tenant, album.facealbum_token, start_token=start.strip() if start else None, limit=page + 1
        )
    except KeyError:
        raise bad("start_token") from None
    out: dict[str, Any] = {"facealbum_token": album.facealbum_token, "faces": [face_json(f) for f in faces[:page]]}
    if len(faces) > page:  # the token of the first face of the next page; absent on the last page
        out["next_token"] = faces[page].face_token
    return out


def album_face_detail(ctx: ApiContext, tenant: str, album: AlbumRecord, token: str) -> dict[str, Any]:
    """getfacedetail: one face of the album, with why it is ungrouped where it is."""
    found = ctx.store.albums.faces(tenant, album.facealbum_token, tokens=[token])
    if not found:
        raise plain(f"INVALID_FACE_TOKEN: {token}")
    face = found[0]
    out = {"facealbum_token": album.facealbum_token, **face_json(face)}
    if face.group_id == GROUP_UNGROUPED and face.ungrouped_reason is not None:
        out["ungrouped_reason"] = face.ungrouped_reason
    return out


def album_image_detail(ctx: ApiContext, tenant: str, album: AlbumRecord, image_id: str) -> dict[str, Any]:
    """getimagedetail: the face tokens an image added to the album."""
    faces = ctx.store.albums.faces(tenant, album.facealbum_token, image_id=image_id)
    if not faces:
        raise plain("INVALID_IMAGE_ID")
    return {
        "facealbum_token": album.facealbum_token,
        "image_id": image_id,
        "face_tokens": ",".join(f.face_token for f in faces),
    }
