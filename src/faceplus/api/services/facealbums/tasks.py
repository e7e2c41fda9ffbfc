"""The FaceAlbum async tasks: queued with their image, carried out by the task runner, their state."""

from __future__ import annotations

import secrets
from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError, plain
from faceplus.api.services.facealbums.grouping import group_faces
from faceplus.api.services.facealbums.images import add_image, search_image
from faceplus.errors import FaceplusError
from faceplus.store import AlbumRecord

KIND_ADD, KIND_GROUP, KIND_SEARCH = "facealbum_addimage", "facealbum_groupface", "facealbum_searchimage"


def queue_with_image(ctx: ApiContext, tenant: str, kind: str, facealbum_token: str, data: bytes, param: str) -> str:
    """Keep the image until the task's outcome is recorded (the store deletes it then) and queue the task; the
    task_id. A task cut short (kill -9) reads the image again when it is run again."""
    assert ctx.tasks is not None
    upload_id = secrets.token_hex(16)
    ctx.store.albums.put_upload(tenant, upload_id, data, ctx.now())
    params = {"facealbum_token": facealbum_token, "upload_id": upload_id, "param": param}
    try:
        return ctx.tasks.submit(tenant, kind, params)
    except ApiError:
        ctx.store.albums.drop_upload(tenant, upload_id)
        raise


def run_album_task(ctx: ApiContext, tenant: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Carry out a queued FaceAlbum task (called by :func:`faceplus.api.services.facesets.run_task`)."""
    token = params["facealbum_token"]
    if kind == KIND_GROUP:
        return group_faces(ctx, tenant, token, params["operation_type"])
    data = ctx.store.albums.get_upload(tenant, params["upload_id"])
    if data is None:  # erased, or its task already finished (the store drops it with the outcome)
        raise plain("IMAGE_ERROR_UNSUPPORTED_FORMAT: " + params["param"])
    try:
        if kind == KIND_ADD:
            return add_image(ctx, tenant, token, data, params["param"], image_id=params["upload_id"])
        if kind == KIND_SEARCH:
            return search_image(ctx, tenant, token, data, params["param"])
    except FaceplusError as exc:  # the engine's refusal (bad image, ...) is the task's reported failure
        raise ApiError.of(exc) from None
    raise ApiError(500, "INTERNAL_ERROR")


def queue_grouping(ctx: ApiContext, tenant: str, album: AlbumRecord, mode: str) -> dict[str, Any]:
    """groupface: a grouping task queued (``mode``: incremental or entirefacealbum)."""
    assert ctx.tasks is not None
    task_id = ctx.tasks.submit(tenant, KIND_GROUP, {"facealbum_token": album.facealbum_token, "operation_type": mode})
    return {"facealbum_token": album.facealbum_token, "task_id": task_id}


def album_task_status(ctx: ApiContext, tenant: str, task_id: str, kind: str) -> dict[str, Any]:
    """A FaceAlbum task's state: ``status`` 0 running, 1 done (with the result's fields), -1 failed."""
    task = ctx.store.tasks.get(tenant, task_id)
    if task is None or task.kind != kind:
        raise plain("INVALID_TASK_ID")
    out: dict[str, Any] = {
        "task_id": task.task_id,
        "status": task.status,
        "facealbum_token": task.params.get("facealbum_token", ""),
    }
    if task.status == 1 and task.result:
        out.update(task.result)
    elif task.status == -1:
        reason = (task.result or {}).get("error_message", "INTERNAL_ERROR")
        out["task_failure_message"] = reason  # FaceAlbum's documented field
        out["task_failure_detail"] = reason  # the FaceSet tasks' field, for clients written against those
    return out
