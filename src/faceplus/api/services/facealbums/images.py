"""An image's faces detected and added to an album (addimage), or searched for among its people
(searchimage)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from faceplus.api.context import ApiContext
from faceplus.api.errors import plain
from faceplus.api.services.facealbums.grouping import engine_model_faces, link_distance
from faceplus.api.services.facealbums.placement import embeddings, is_group
from faceplus.api.services.faces import new_token
from faceplus.jobs.detect import DetectRequest, detect_job
from faceplus.jobs.min_face import facepp_min_face
from faceplus.store import AlbumFace, AlbumFull
from faceplus.tools.clustering import pairwise_distances_block


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
