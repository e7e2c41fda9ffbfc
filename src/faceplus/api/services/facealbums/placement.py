"""How a FaceAlbum grouping places faces: pure rules over the faces and their embeddings, no store or engine.

Grouping is the project's clustering (:mod:`faceplus.tools.clustering`: average linkage cut at the engine's
calibrated 1e-3 false-accept distance, the rule ``faceplus cluster`` uses) with Face++'s incremental semantics:

* ``incremental`` (the default): only faces not in a group yet (group_id "-1", or "0" when an earlier grouping
  found nothing like them) are clustered among themselves; each new cluster then joins the existing group it
  is closest to *on average* (mean distance over all face pairs, the same rule average linkage merges by) when
  that is within the threshold, else it becomes a new group (2+ faces) or stays "0" (a lone face). Faces
  already in groups never move and group ids never change.
* ``entirefacealbum``: every face not placed by hand is clustered afresh; each new cluster keeps the old
  group id most of its faces had (each old id goes to at most one cluster), so ids stay stable where the
  grouping agrees with the last one.

A face placed by ``updateface`` is pinned: no grouping moves it (the store refuses to), and when it sits in
a group it counts as one of that group's faces for the clusters that may join it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np

from faceplus.store import GROUP_NOT_GROUPED, GROUP_UNGROUPED, AlbumFace
from faceplus.tools.clustering import cluster_embeddings, pairwise_distances_block

#: Face++ ``ungrouped_reason`` for a face grouping found no similar face for (the only reason faceplus gives).
NO_SIMILAR_PORTRAIT = 4
INCREMENTAL, ENTIRE = "incremental", "entirefacealbum"


def is_group(group_id: str) -> bool:
    """A real group (not "-1" not grouped, not "0" ungrouped)."""
    return group_id not in (GROUP_NOT_GROUPED, GROUP_UNGROUPED)


def embeddings(faces: list[AlbumFace]) -> np.ndarray:
    """The faces' embeddings as one float32 matrix, a row each; grouping and search load the faces with them."""
    rows = [face.embedding for face in faces if face.embedding is not None]
    if len(rows) != len(faces):
        raise AssertionError("album faces were loaded without their embeddings")
    return np.stack(rows).astype(np.float32)


def _mean_distances(
    x: np.ndarray, labels: np.ndarray, y: np.ndarray, group_of_y: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Mean pairwise distance between each cluster of ``x`` (by ``labels``) and each group of ``y``."""
    groups = sorted(set(group_of_y))
    if not len(x) or not groups:
        return np.zeros((int(labels.max()) + 1 if len(labels) else 0, 0)), groups
    k = int(labels.max()) + 1
    col = {g: j for j, g in enumerate(groups)}
    by_cluster = np.zeros((k, len(x)))
    by_cluster[labels, np.arange(len(x))] = 1.0
    by_group = np.zeros((len(y), len(groups)))
    by_group[np.arange(len(y)), [col[g] for g in group_of_y]] = 1.0
    sums = by_cluster @ pairwise_distances_block(x, y) @ by_group
    return sums / np.outer(by_cluster.sum(1), by_group.sum(0)), groups


def plan_groups(
    faces: list[AlbumFace], threshold: float, mode: str, new_ids: Callable[[int], list[str]]
) -> dict[str, tuple[str, int | None]]:
    """The (group_id, ungrouped_reason) each face that moves gets; ``new_ids(n)`` hands out unused group ids."""
    free = [f for f in faces if not f.manual]
    if mode == ENTIRE:
        candidates = free
        anchors = [f for f in faces if f.manual and is_group(f.group_id)]
    else:
        candidates = [f for f in free if not is_group(f.group_id)]
        anchors = [f for f in faces if is_group(f.group_id)]
    if not candidates:
        return {}
    x = embeddings(candidates)
    labels = cluster_embeddings(x, threshold)
    members: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        members[label].append(i)
    chosen: dict[int, str] = {}
    if mode == ENTIRE:  # keep the old id most of a cluster's faces had (each old id to one cluster)
        votes = Counter(
            (label, candidates[i].group_id)
            for label, idx in members.items()
            for i in idx
            if is_group(candidates[i].group_id)
        )
        taken: set[str] = set()
        for (label, old), _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
            if label not in chosen and old not in taken:
                chosen[label] = old
                taken.add(old)
    if anchors:  # clusters without an id yet join the group they are closest to on average, if close enough
        y = embeddings(anchors)
        mean, groups = _mean_distances(x, labels, y, [f.group_id for f in anchors])
        for label in members:
            if label in chosen or not groups:
                continue
            j = int(np.argmin(mean[label]))
            if mean[label, j] <= threshold:
                chosen[label] = groups[j]
    fresh = [label for label in sorted(members) if label not in chosen and len(members[label]) >= 2]
    for label, gid in zip(fresh, new_ids(len(fresh)) if fresh else [], strict=True):
        chosen[label] = gid
    plan: dict[str, tuple[str, int | None]] = {}
    for label, idx in members.items():
        target = (chosen[label], None) if label in chosen else (GROUP_UNGROUPED, NO_SIMILAR_PORTRAIT)
        for i in idx:
            face = candidates[i]
            if (face.group_id, face.ungrouped_reason) != target:
                plan[face.face_token] = target
    return plan
