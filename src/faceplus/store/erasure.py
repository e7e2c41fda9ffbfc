"""What erasure removes and how tasks that name an erased token are found: the rules both backends share.

Erasure removes a face token, or every face of a ``user_id``, immediately and completely: the face row, its
FaceSet memberships (FaceSet counts and versions follow, so cached search indexes reload), its kept face crop,
the kept images it came from, FaceAlbum faces of that token, async tasks whose parameters or results name it,
and liveness challenges made from it. :meth:`faceplus.store.interfaces.Erasure.scrub` then removes what
deleted rows leave behind (SQLite: a truncating WAL checkpoint; PostgreSQL: VACUUM of the tables that held them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: Tables whose dead rows an erasure leaves (PostgreSQL VACUUMs them; SQLite checkpoints whatever they are).
ERASE_TABLES = ("faces", "members", "face_crops", "images", "tasks", "album_faces", "reembeds")
#: Tables a sweep of lapsed face tokens leaves dead rows in.
SWEEP_TABLES = ("faces", "face_crops", "images", "reembeds")

#: A token as it appears inside a task's JSON text (face, FaceSet and album tokens are hex).
TOKEN_WORD = re.compile(r"[0-9A-Za-z_-]+")


def tasks_naming(rows: Iterable[Sequence[str]], erased: Sequence[str]) -> list[str]:
    """The ids of the task rows ``(task_id, params, result)`` whose text names one of the ``erased`` tokens.

    One pass over the tasks whatever the number of tokens (one scan per token held SQLite's write lock 54.5 s
    for 1,000 tokens and 50k tasks; PostgreSQL's strpos per pair took 28 s): each task's text is cut into
    token-shaped words (a token is a whole word of its JSON) and matched against the set. A token outside
    that alphabet (none the server makes) is matched as a substring.
    """
    wanted = set(erased)
    odd = [t for t in wanted if not TOKEN_WORD.fullmatch(t)]
    return [
        task_id
        for task_id, params, result in rows
        if not wanted.isdisjoint(TOKEN_WORD.findall(params + "\n" + result))
        or any(t in params or t in result for t in odd)
    ]
