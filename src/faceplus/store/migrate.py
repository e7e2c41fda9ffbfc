"""``faceplus migrate``: copy everything a store holds to another, and read it back.

Copied: keys, faces with their kept crops (face/analyze keeps working on migrated tokens) and the identity model
of each embedding, FaceSets (members in order, the model their search uses), ``faceplus index``'s ledger per
FaceSet (a resumed index adds nothing twice), tasks, kept images, FaceAlbums (faces, embeddings, groups, manual
pins) and the audit trail. Not copied: liveness challenges (valid an hour, single use: a client asks for a new
one), async FaceAlbum uploads not yet run, and the new vectors of a ``faceplus reembed`` still waiting for their
FaceSet to switch (finish the re-embedding first, or run it again in the target: the crops are copied).

Works in both directions (data folder -> PostgreSQL and back). The target must be empty, so a rerun
cannot duplicate anything; after copying, every face token, crop, FaceSet member list, ledger, album and the
audit trail's length are read back from the target and compared with the source, so "done" means nothing
was lost. A FaceAlbum's next new group id is set past its highest group id in use (ids of groups emptied
before the migration may be given again).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from faceplus.store.interfaces import Store
from faceplus.store.records import AlbumRecord, AuditEntry, FaceRecord, FaceSetRecord

#: Audit entries read per page.
_AUDIT_PAGE = 10_000


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
    crops: int = 0
    albums: int = 0
    album_faces: int = 0
    audit_entries: int = 0
    ledger_entries: int = 0


def _members(store: Store, tenant: str, faceset_token: str, page: int = 10_000) -> list[str]:
    tokens: list[str] = []
    while True:
        chunk = store.facesets.tokens(tenant, faceset_token, len(tokens), page)
        tokens.extend(chunk)
        if len(chunk) < page:
            return tokens


def _face_tokens(store: Store) -> list[str]:
    return [f.face_token for batch in store.faces.iter_all() for f in batch]


def _face_models(store: Store) -> dict[str, str]:
    """Each face token's identity model."""
    return {f.face_token: f.model for batch in store.faces.iter_all() for f in batch}


def _with_crops(store: Store, faces: list[FaceRecord]) -> int:
    """Attach each face's kept crop (read per tenant); how many had one."""
    by_tenant: dict[str, list[FaceRecord]] = defaultdict(list)
    for face in faces:
        by_tenant[face.tenant].append(face)
    found = 0
    for tenant, group in by_tenant.items():
        crops = store.faces.crops(tenant, [f.face_token for f in group])
        for face in group:
            face.crop = crops.get(face.face_token)
            found += face.crop is not None
    return found


def _tenants(store: Store) -> list[str]:
    return sorted({k.api_key for k in store.keys.all()} | {fs.tenant for fs in store.facesets.all()})


def _albums(store: Store, tenant: str, page: int = 1000) -> list[AlbumRecord]:
    albums: list[AlbumRecord] = []
    while True:
        chunk = store.albums.of_tenant(tenant, len(albums), page)
        albums.extend(chunk)
        if len(chunk) < page:
            return albums


def _audit(store: Store) -> Iterator[AuditEntry]:
    """Every audit entry, oldest first, a page at a time.

    Pages are read from the last instant seen (entries are ordered by time, then insertion), skipping the entries
    of that instant already yielded, so none is repeated or missed however many share one instant.
    """
    since: float | None = None
    skip = 0
    while True:
        page = store.audit.entries(since=since, limit=skip + _AUDIT_PAGE)
        yield from page[skip:]
        if len(page) < skip + _AUDIT_PAGE:
            return
        since = page[-1].time
        skip = sum(1 for e in page if e.time == since)


def migrate(
    source: Store, target: Store, *, batch: int = 1000, progress: Callable[[str], None] | None = None
) -> MigrationReport:
    """Copy ``source`` into the empty ``target`` and verify it; raises :class:`MigrationError` on any mismatch."""
    say = progress or (lambda _msg: None)
    empty = not target.keys.all() and next(target.faces.iter_all(1), None) is None and not target.facesets.all()
    if not empty:
        raise MigrationError("the target store is not empty; migrate into a fresh data folder or database")

    keys = source.keys.all()
    for key in keys:
        target.keys.add(key)
    say(f"{len(keys)} keys")
    faces, crops = _copy_faces(source, target, batch, say)
    facesets = source.facesets.all()
    members = _copy_facesets(source, target, facesets, batch)
    say(f"{len(facesets)} FaceSets, {members} memberships")
    ledger = _copy_ledgers(source, target, facesets)
    tasks = source.tasks.all()
    for task in tasks:
        target.tasks.add(task)
    images = 0
    for tenant, image_id, data, created in source.faces.iter_images():
        target.faces.put_image(tenant, image_id, data, created)
        images += 1
    albums, album_faces = _copy_albums(source, target)
    say(f"{albums} FaceAlbums, {album_faces} album faces")
    audit = _copy_audit(source, target)
    say(f"{audit} audit entries")

    _verify(source, target, facesets)
    say("verified: faces, crops, FaceSet members, ledgers, albums and the audit trail read back the same")
    return MigrationReport(
        len(keys), faces, len(facesets), members, len(tasks), images, crops, albums, album_faces, audit, ledger
    )


def _copy_faces(source: Store, target: Store, batch: int, say: Callable[[str], None]) -> tuple[int, int]:
    """Every face, ``batch`` at a time, with its kept crop: the faces and crops copied."""
    faces = crops = 0
    for chunk in source.faces.iter_all(batch):
        crops += _with_crops(source, chunk)
        target.faces.add(chunk)
        faces += len(chunk)
        say(f"{faces} faces ({crops} kept crops)")
    return faces, crops


def _copy_facesets(source: Store, target: Store, facesets: list[FaceSetRecord], batch: int) -> int:
    """Each FaceSet and its members (``batch`` at a time): the memberships copied."""
    members = 0
    for fs in facesets:
        target.facesets.create(fs)
        tokens = _members(source, fs.tenant, fs.faceset_token)
        for start in range(0, len(tokens), batch):
            change = target.facesets.add_faces(
                fs.tenant, fs.faceset_token, tokens[start : start + batch], float("-inf"), len(tokens) + 1
            )
            if change.failures:
                raise MigrationError(f"FaceSet {fs.faceset_token}: could not add {change.failures[:3]}")
        members += len(tokens)
    return members


def _copy_ledgers(source: Store, target: Store, facesets: list[FaceSetRecord]) -> int:
    """Each FaceSet's ledger entries: how many were copied."""
    ledger = 0
    for fs in facesets:
        entries = source.ledger.entries(fs.tenant, fs.faceset_token)
        if entries:
            target.ledger.record(fs.tenant, fs.faceset_token, list(entries.values()), time.time())
            ledger += len(entries)
    return ledger


def _copy_albums(source: Store, target: Store) -> tuple[int, int]:
    """Every tenant's FaceAlbums with their faces and next group id: the albums and album faces copied."""
    albums = album_faces = 0
    for tenant in _tenants(source):
        for album in _albums(source, tenant):
            target.albums.create(tenant, album.facealbum_token, album.created)
            faces_in = source.albums.faces(tenant, album.facealbum_token, embeddings=True)
            if faces_in:
                target.albums.add_faces(tenant, album.facealbum_token, faces_in, len(faces_in))
            used = [int(f.group_id) for f in faces_in if f.group_id.isdigit()]
            if used and max(used) > 0:
                target.albums.new_group_ids(tenant, album.facealbum_token, max(used))  # the next new group id
            albums += 1
            album_faces += len(faces_in)
    return albums, album_faces


def _copy_audit(source: Store, target: Store) -> int:
    """The audit trail, oldest first: how many entries were copied."""
    audit = 0
    for entry in _audit(source):
        target.audit.add(
            AuditEntry(entry.time, entry.api_key, entry.route, entry.object_ids, entry.status, entry.result)
        )
        audit += 1
    return audit


def _verify(source: Store, target: Store, facesets: list[FaceSetRecord]) -> None:
    theirs, ours = _face_models(source), _face_models(target)
    missing = set(theirs) - set(ours)
    if missing:
        raise MigrationError(f"{len(missing)} faces missing in the target, e.g. {sorted(missing)[:3]}")
    relabelled = sorted(t for t, model in theirs.items() if ours[t] != model)
    if relabelled:
        raise MigrationError(f"{len(relabelled)} faces changed identity model in the copy, e.g. {relabelled[:3]}")
    for fs in facesets:
        if _members(source, fs.tenant, fs.faceset_token) != _members(target, fs.tenant, fs.faceset_token):
            raise MigrationError(f"FaceSet {fs.faceset_token} members differ after the copy")
    if {k.api_key for k in source.keys.all()} != {k.api_key for k in target.keys.all()}:
        raise MigrationError("API keys differ after the copy")
    for fs in facesets:
        if source.ledger.entries(fs.tenant, fs.faceset_token) != target.ledger.entries(fs.tenant, fs.faceset_token):
            raise MigrationError(f"FaceSet {fs.faceset_token}: faceplus index's ledger differs after the copy")
    for tenant in _tenants(source):
        tokens = [f.face_token for batch in source.faces.iter_all() for f in batch if f.tenant == tenant]
        want, got = source.faces.crops(tenant, tokens), target.faces.crops(tenant, tokens)
        if set(want) != set(got) or any(want[t].data != got[t].data for t in want):
            raise MigrationError(f"kept face crops of {tenant} differ after the copy")
        for album in _albums(source, tenant):
            source_faces = source.albums.faces(tenant, album.facealbum_token)
            target_faces = target.albums.faces(tenant, album.facealbum_token)
            if [(f.face_token, f.group_id, f.manual) for f in source_faces] != [
                (f.face_token, f.group_id, f.manual) for f in target_faces
            ]:
                raise MigrationError(f"FaceAlbum {album.facealbum_token} differs after the copy")
    if sum(1 for _ in _audit(source)) != sum(1 for _ in _audit(target)):
        raise MigrationError("the audit trail differs in length after the copy")
