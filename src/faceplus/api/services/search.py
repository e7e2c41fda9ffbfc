"""compare and search: how two faces score, and a FaceSet's most similar faces to one face."""

from __future__ import annotations

from typing import Any

from faceplus.api.context import ApiContext
from faceplus.api.errors import ApiError
from faceplus.api.services.faces import FACESET_MODEL_MISMATCH
from faceplus.store import FaceRecord, FaceSetRecord, ModelMismatch

#: Candidates search takes from the index when a cohort-normalised calibration re-ranks them (the normalised
#: order can differ from the raw one only among faces at similar raw distances).
RESCORED_CANDIDATES = 20


def compare_faces(ctx: ApiContext, face1: FaceRecord, face2: FaceRecord) -> dict[str, Any]:
    """compare's ``confidence`` and ``thresholds`` of two faces of the engine's model."""
    return ctx.engine.match(face1.embedding, face2.embedding).to_facepp()


def search_faceset(
    ctx: ApiContext, tenant: str, faceset: FaceSetRecord, face: FaceRecord, count: int
) -> dict[str, Any]:
    """search's ``results`` (the ``count`` most similar members, scored as compare scores them), ``thresholds``
    and ``calibration``; 400 ``FACESET_MODEL_MISMATCH`` when the FaceSet's vectors are another model's."""
    out: dict[str, Any] = {}
    rescore = ctx.engine.rescores_search  # cohort-normalised: more candidates, re-ranked by their score
    want = max(count, RESCORED_CANDIDATES) if rescore else count
    mismatch = ApiError(400, f"{FACESET_MODEL_MISMATCH}: {faceset.faceset_token}")
    try:
        hits = ctx.store.facesets.search(
            tenant, faceset.faceset_token, face.embedding, want, faceset.version, model=face.model
        )
    except ModelMismatch:
        raise mismatch from None
    # Scored as compare scores them, from the hits' vectors of the FaceSet's model (a member's own vector may
    # still be the old model's while reembed runs).
    found = ctx.store.facesets.vectors(tenant, faceset.faceset_token, [t for t, _ in hits])
    if found.model != face.model:  # switched between the search and this read
        raise mismatch
    embeddings = dict(zip(found.tokens, found.vectors, strict=True))
    scored = ctx.engine.score_hits(face.embedding, hits, embeddings)[:count]
    user_ids = ctx.store.faces.user_ids(tenant, [t for t, _ in scored])
    out["results"] = [
        {"face_token": token, "confidence": round(c, 3), "user_id": user_ids.get(token, "")} for token, c in scored
    ]
    out["thresholds"] = ctx.engine.thresholds  # compare's (FACEPLUS_COMPARE_CALIBRATION)
    out["calibration"] = ctx.engine.calibration.calibrated_on
    return out
