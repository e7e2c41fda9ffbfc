"""FaceAlbum work shared by the routes and the async task runner: adding images, grouping, searching, and the
album queries; how a grouping places faces is :mod:`faceplus.api.services.album_grouping`.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from typing import Any

import numpy as np

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError, bad, echo, plain
from faceplus.api.services.album_grouping import embeddings, is_group, plan_groups
from faceplus.api.services.faces import new_token
from faceplus.errors import FaceplusError
from faceplus.jobs.detect import DetectRequest, detect_job
from faceplus.jobs.min_face import facepp_min_face
from faceplus.store import (
    GROUP_NOT_GROUPED,
    GROUP_UNGROUPED,
    AlbumFace,
    AlbumFull,
    AlbumQuotaExceeded,
    AlbumRecord,
)
from faceplus.tools.clustering import DEFAULT_FAR, link_calibration, pairwise_distances_block

KIND_ADD, KIND_GROUP, KIND_SEARCH = "facealbum_addimage", "facealbum_groupface", "facealbum_searchimage"
#: updateface's ``new_group_id`` for "a new group" (any letter case).
CREATE_NEW_GROUP = "CreateNewGroup"


def link_distance(ctx: ApiContext) -> float:
    """The L2 distance below which two faces are one person (the calibrated 1e-3 false-accept distance)."""
    return float(link_calibration(ctx.engine.calibration).threshold_distances[DEFAULT_FAR])


def face_json(face: AlbumFace) -> dict[str, Any]:
    """A face as getalbumdetail lists it."""
    return {
        "face_token": face.face_token,
        "group_id": face.group_id,
        "image_id": face.image_id,
        "face_rectangle": face.face_rectangle,
    }


def group_json(face: AlbumFace) -> dict[str, Any]:
    """A face as groupface's result lists it (``ungrouped_reason`` only for group "0", as Face++ does)."""
    out: dict[str, Any] = {"group_id": face.group_id, "face_token": face.face_token}
    if face.group_id == GROUP_UNGROUPED and face.ungrouped_reason is not None:
        out["ungrouped_reason"] = face.ungrouped_reason
    return out


# -- adding images ----------------------------------------------------------------------------------
def detect_faces(ctx: ApiContext, data: bytes, param: str) -> list[tuple[dict[str, int], np.ndarray]]:
    """(face_rectangle, embedding) of each face Face++ would report, largest first (engine work in a worker)."""
    request = DetectRequest(data, param, min_face=facepp_min_face(ctx.settings))
    found = ctx.engine_calls.run(detect_job, request)
    return [
        (face.box.to_facepp(), np.asarray(face.embedding, dtype=np.float32))
        for face in found
        if face.embedding is not None
    ]


def add_image(
    ctx: ApiContext, tenant: str, facealbum_token: str, data: bytes, param: str, image_id: str | None = None
) -> dict[str, Any]:
    """Detect the image's faces and add them to the album, not grouped yet; Face++'s addimage reply.

    ``image_id``: a task's own id for the image (its upload id). When the album already holds faces of it, an
    earlier run of the task added them and was cut before recording its outcome: reply with those, add none.
    """
    if image_id is not None:
        try:
            added = ctx.store.albums.faces(tenant, facealbum_token, image_id=image_id)
        except KeyError:
            raise plain("INVALID_FACEALBUM_TOKEN") from None
        if added:
            return _added_reply(facealbum_token, image_id, added)
    faces = detect_faces(ctx, data, param)
    image_id, now = image_id or new_token(), ctx.now()
    model = ctx.engine.model_id
    records = [AlbumFace(new_token(), image_id, rect, now, embedding, model=model) for rect, embedding in faces]
    try:
        ctx.store.albums.add_faces(tenant, facealbum_token, records, ctx.settings.facealbum_max_faces)
    except KeyError:
        raise plain("INVALID_FACEALBUM_TOKEN") from None
    except AlbumFull:
        raise plain("FACEALBUM_QUOTA_EXCEEDED") from None
    return _added_reply(facealbum_token, image_id, records)


def _added_reply(facealbum_token: str, image_id: str, faces: list[AlbumFace]) -> dict[str, Any]:
    return {
        "facealbum_token": facealbum_token,
        "image_id": image_id,
        "faces": [{"face_token": f.face_token, "face_rectangle": f.face_rectangle} for f in faces],
    }


def engine_model_faces(ctx: ApiContext, tenant: str, facealbum_token: str) -> list[AlbumFace]:
    """The album's faces with embeddings of the engine's identity model: grouping, candidates and search never
    put two models' vectors side by side (faces added before a model upgrade keep their group and are left out;
    KeyError: no such album)."""
    faces = ctx.store.albums.faces(tenant, facealbum_token, embeddings=True)
    return [f for f in faces if f.model == ctx.engine.model_id]


def group_faces(ctx: ApiContext, tenant: str, facealbum_token: str, mode: str) -> dict[str, Any]:
    """Run a grouping and reply with every face's group afterwards (groupfacetaskquery's ``group_result``)."""
    try:
        faces = engine_model_faces(ctx, tenant, facealbum_token)
        plan = plan_groups(
            faces,
            link_distance(ctx),
            mode,
            lambda n: ctx.store.albums.new_group_ids(tenant, facealbum_token, n),
        )
        if plan:
            ctx.store.albums.set_groups(tenant, facealbum_token, plan, manual=False)
        after = ctx.store.albums.faces(tenant, facealbum_token)
    except KeyError:
        raise plain("INVALID_FACEALBUM_TOKEN") from None
    return {"facealbum_token": facealbum_token, "group_result": [group_json(f) for f in after]}


def find_candidates(ctx: ApiContext, tenant: str, facealbum_token: str, group_id: str) -> list[dict[str, Any]]:
    """Other groups that may be the same person: at least one face pair within the link distance.

    ``similarity`` is the engine's Face++ confidence (0-100) of that closest pair; most similar first.
    """
    faces = [f for f in engine_model_faces(ctx, tenant, facealbum_token) if is_group(f.group_id)]
    mine = [f for f in faces if f.group_id == group_id]
    if not mine:
        raise plain("INVALID_GROUP_ID")
    others = [f for f in faces if f.group_id != group_id]
    if not others:
        return []
    x = embeddings(mine)
    y = embeddings(others)
    nearest = pairwise_distances_block(x, y).min(0)
    best: dict[str, float] = {}
    for face, d in zip(others, nearest.tolist(), strict=True):
        best[face.group_id] = min(best.get(face.group_id, np.inf), d)
    threshold = link_distance(ctx)
    hits = sorted((d, g) for g, d in best.items() if d <= threshold)
    confidence = link_calibration(ctx.engine.calibration).confidence
    return [{"group_id": g, "similarity": round(float(confidence(d)), 3)} for d, g in hits]


# -- searching ----------------------------------------------------------------------------------------
def search_image(ctx: ApiContext, tenant: str, facealbum_token: str, data: bytes, param: str) -> dict[str, Any]:
    """For each face of the image: the album's photos of that person (searchimagetaskquery's ``search_result``).

    A face matches the album faces within the link distance; its person is the group of the nearest matching
    grouped face (all that group's photos), plus the photos of matching faces not in any group.
    """
    faces = detect_faces(ctx, data, param)
    try:
        album = engine_model_faces(ctx, tenant, facealbum_token)
    except KeyError:
        raise plain("INVALID_FACEALBUM_TOKEN") from None
    threshold = link_distance(ctx)
    images_of: dict[str, set[str]] = defaultdict(set)
    for f in album:
        if is_group(f.group_id):
            images_of[f.group_id].add(f.image_id)
    y = embeddings(album) if album else None
    results = []
    for rect, embedding in faces:
        item: dict[str, Any] = {"face_rectangle": rect, "image_id_set": ""}
        if y is not None:
            d = pairwise_distances_block(embedding[None, :], y)[0]
            order = [i for i in np.argsort(d).tolist() if d[i] <= threshold]
            grouped = [i for i in order if is_group(album[i].group_id)]
            found = {album[i].image_id for i in order if not is_group(album[i].group_id)}
            if grouped:
                item["group_id"] = album[grouped[0]].group_id
                found |= images_of[item["group_id"]]
            item["image_id_set"] = ",".join(sorted(found))
        results.append(item)
    return {"facealbum_token": facealbum_token, "search_result": results}


# -- async tasks ------------------------------------------------------------------------------------
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


# -- the routes' rules --------------------------------------------------------------------------------
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
