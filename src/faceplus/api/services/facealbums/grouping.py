"""A grouping run over an album (groupface's work), and the other groups that may be one person; how a grouping
places faces is :mod:`.placement`."""

from __future__ import annotations

from typing import Any

import numpy as np

from faceplus.api.context import ApiContext
from faceplus.api.errors import plain
from faceplus.api.services.facealbums.placement import embeddings, is_group, plan_groups
from faceplus.store import GROUP_UNGROUPED, AlbumFace
from faceplus.tools.clustering import DEFAULT_FAR, link_calibration, pairwise_distances_block


def link_distance(ctx: ApiContext) -> float:
    """The L2 distance below which two faces are one person (the calibrated 1e-3 false-accept distance)."""
    return float(link_calibration(ctx.engine.calibration).threshold_distances[DEFAULT_FAR])


def group_json(face: AlbumFace) -> dict[str, Any]:
    """A face as groupface's result lists it (``ungrouped_reason`` only for group "0", as Face++ does)."""
    out: dict[str, Any] = {"group_id": face.group_id, "face_token": face.face_token}
    if face.group_id == GROUP_UNGROUPED and face.ungrouped_reason is not None:
        out["ungrouped_reason"] = face.ungrouped_reason
    return out


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
