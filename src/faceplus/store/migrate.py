"""``faceplus migrate``: copy every key, face, FaceSet (members in order), task and kept image between stores.

Works in both directions (data folder -> PostgreSQL and back). The target must be empty, so a rerun
cannot duplicate anything; after copying, every face token and every FaceSet's member list is read back
from the target and compared with the source, so "done" means no face was lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faceplus.store.base import Store


class MigrationError(RuntimeError):
    """The target was not empty, or it did not read back what the source holds."""


@dataclass(frozen=True)
class MigrationReport:
    keys: int
    faces: int
    facesets: int
    members: int
    tasks: int
    images: int


def _members(store: Store, tenant: str, faceset_token: str, page: int = 10_000) -> list[str]:
    tokens: list[str] = []
    while True:
        chunk = store.faceset_tokens(tenant, faceset_token, len(tokens), page)
        tokens.extend(chunk)
        if len(chunk) < page:
            return tokens


def _face_tokens(store: Store) -> list[str]:
    return [f.face_token for batch in store.iter_faces() for f in batch]


def migrate(
    source: Store, target: Store, *, batch: int = 1000, progress: Callable[[str], None] | None = None
) -> MigrationReport:
    """Copy ``source`` into the empty ``target`` and verify it; raises :class:`MigrationError` on any mismatch."""
    say = progress or (lambda _msg: None)
    if target.list_keys() or next(iter(target.iter_faces(1)), None) or target.all_facesets():
        raise MigrationError("the target store is not empty; migrate into a fresh data folder or database")

    keys = source.list_keys()
    for key in keys:
        target.add_key(key)
    say(f"{len(keys)} keys")

    faces = 0
    for chunk in source.iter_faces(batch):
        target.add_faces(chunk)
        faces += len(chunk)
        say(f"{faces} faces")

    facesets = source.all_facesets()
    members = 0
    for fs in facesets:
        target.create_faceset(fs)
        tokens = _members(source, fs.tenant, fs.faceset_token)
        for start in range(0, len(tokens), batch):
            change = target.add_to_faceset(
                fs.tenant, fs.faceset_token, tokens[start : start + batch], float("-inf"), len(tokens) + 1
            )
            if change.failures:
                raise MigrationError(f"FaceSet {fs.faceset_token}: could not add {change.failures[:3]}")
        members += len(tokens)
    say(f"{len(facesets)} FaceSets, {members} memberships")

    tasks = source.all_tasks()
    for task in tasks:
        target.add_task(task)
    images = 0
    for tenant, image_id, data, created in source.iter_images():
        target.put_image(tenant, image_id, data, created)
        images += 1

    _verify(source, target, facesets)
    say("verified: every face token and FaceSet member list reads back the same")
    return MigrationReport(len(keys), faces, len(facesets), members, len(tasks), images)


def _verify(source: Store, target: Store, facesets: list) -> None:
    missing = set(_face_tokens(source)) - set(_face_tokens(target))
    if missing:
        raise MigrationError(f"{len(missing)} faces missing in the target, e.g. {sorted(missing)[:3]}")
    for fs in facesets:
        if _members(source, fs.tenant, fs.faceset_token) != _members(target, fs.tenant, fs.faceset_token):
            raise MigrationError(f"FaceSet {fs.faceset_token} members differ after the copy")
    if {k.api_key for k in source.list_keys()} != {k.api_key for k in target.list_keys()}:
        raise MigrationError("API keys differ after the copy")
