"""The storage interface: a :class:`Store` composed of small facets, one per concern, with no SQL in sight.

Each facet is an interface of a dozen methods or fewer; the embedded backend (:mod:`faceplus.store.sqlite`) and the
server backend (:mod:`faceplus.store.postgres`) implement every one of them, one module per facet, around one
shared database helper (composition: no facet inherits another's methods). Callers reach a facet by name:
``store.faces.add(...)``, ``store.facesets.search(...)``.

Every face and FaceSet method takes the tenant (the api_key that owns the rows) so no backend can leak one tenant's
data to another by forgetting a filter in a caller. Methods that change a FaceSet's membership return its new
``version``; the store owns search (the embedded store keeps its in-process index in step with its own writes,
PostgreSQL searches its rows). Each write is durable when the method returns.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from faceplus.store.erasure import ERASE_TABLES
from faceplus.store.records import (
    AlbumFace,
    AlbumRecord,
    ApiKeyRecord,
    AuditEntry,
    BizTokenRecord,
    ErasureResult,
    FaceCrop,
    FaceRecord,
    FaceSetRecord,
    FaceSetVectors,
    LedgerEntry,
    MembershipChange,
    NewMembers,
    StoredFace,
    TaskRecord,
)
from faceplus.store.scrubbing import Scrubber


class KeysStore(ABC):
    """API keys; a secret is kept only as a salted KDF hash."""

    @abstractmethod
    def add(self, key: ApiKeyRecord) -> None: ...

    @abstractmethod
    def get(self, api_key: str) -> ApiKeyRecord | None: ...

    @abstractmethod
    def all(self) -> list[ApiKeyRecord]: ...

    @abstractmethod
    def revoke(self, api_key: str, when: float) -> bool:
        """Mark a key revoked; False if there is no such live key."""


class FacesStore(ABC):
    """Detected faces (face tokens), their kept crops, and the uploaded images kept with them."""

    @abstractmethod
    def add(self, faces: Sequence[FaceRecord]) -> None:
        """Save the faces, with their crops when given (a crop lives exactly as long as its face row)."""

    @abstractmethod
    def get(self, tenant: str, tokens: Sequence[str], live_after: float) -> dict[str, FaceRecord]:
        """The tenant's faces among ``tokens`` that are in a FaceSet or were created after ``live_after``."""

    @abstractmethod
    def set_user_id(self, tenant: str, face_token: str, user_id: str) -> None: ...

    @abstractmethod
    def user_ids(self, tenant: str, tokens: Sequence[str]) -> dict[str, str]: ...

    @abstractmethod
    def sweep(self, created_before: float) -> int:
        """Delete faces created before the cutoff that belong to no FaceSet (and images no face came from);
        returns how many faces."""

    @abstractmethod
    def crops(self, tenant: str, tokens: Sequence[str]) -> dict[str, FaceCrop]:
        """The kept crops of the tenant's faces among ``tokens`` (callers check liveness first)."""

    @abstractmethod
    def put_image(self, tenant: str, image_id: str, data: bytes, created: float) -> None:
        """Keep an uploaded image (only when the server keeps images)."""

    @abstractmethod
    def get_image(self, tenant: str, image_id: str) -> bytes | None: ...

    @abstractmethod
    def iter_all(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        """Every face of every tenant, lapsed or not, in batches ordered by face_token (``faceplus migrate``)."""

    @abstractmethod
    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        """Every kept image as (tenant, image_id, data, created)."""


class FaceSetsStore(ABC):
    """FaceSets: their records, memberships and search."""

    @abstractmethod
    def create(
        self, faceset: FaceSetRecord, max_facesets: int | None = None, members: NewMembers | None = None
    ) -> MembershipChange:
        """Create the FaceSet and add ``members`` in one transaction (as :meth:`add_faces` would).

        Raises :class:`~faceplus.store.records.OuterIdExists` when the tenant already has that outer_id, and
        :class:`~faceplus.store.records.FaceSetQuotaExceeded` when it already has ``max_facesets`` FaceSets."""

    @abstractmethod
    def get(
        self, tenant: str, *, faceset_token: str | None = None, outer_id: str | None = None
    ) -> FaceSetRecord | None: ...

    @abstractmethod
    def of_tenant(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        """The tenant's FaceSets carrying every tag in ``tags``, oldest first."""

    @abstractmethod
    def of_face(self, tenant: str, face_token: str) -> list[FaceSetRecord]:
        """The tenant's FaceSets the face is a member of."""

    @abstractmethod
    def update(self, tenant: str, faceset_token: str, changes: dict[str, Any]) -> FaceSetRecord:
        """Change outer_id/display_name/user_data/tags; raises :class:`~faceplus.store.records.OuterIdExists`."""

    @abstractmethod
    def delete(self, tenant: str, faceset_token: str, *, only_if_empty: bool = False) -> bool:
        """Delete the FaceSet (and its memberships); with ``only_if_empty``, only when it has no members at that
        moment, checked and deleted in one step. False when it was kept for having members."""

    @abstractmethod
    def add_faces(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        """Add live tenant faces; failures are (token, reason) with Face++ reasons."""

    @abstractmethod
    def remove_faces(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        """Remove ``tokens`` (all members when None)."""

    @abstractmethod
    def tokens(self, tenant: str, faceset_token: str, offset: int, limit: int) -> list[str]:
        """Member tokens in the order they were added."""

    @abstractmethod
    def vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors:
        """The FaceSet's vectors of its active model (only those of ``tokens`` when given); KeyError: no FaceSet."""

    @abstractmethod
    def search(
        self,
        tenant: str,
        faceset_token: str,
        query: np.ndarray,
        k: int,
        version: int | None = None,
        model: str | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` members nearest to ``query`` as (token, L2 distance), nearest first.

        Only vectors of the FaceSet's active model are searched. ``model`` is the query's: a FaceSet whose
        active model is another raises :class:`~faceplus.store.records.ModelMismatch` (None: not checked).
        ``version`` is the FaceSet's version the caller has just read (its search must see at least that state);
        None: the store reads it. Raises KeyError when the FaceSet does not exist.
        """

    @abstractmethod
    def all(self) -> list[FaceSetRecord]:
        """Every FaceSet of every tenant, oldest first (``faceplus migrate``)."""


class TasksStore(ABC):
    """Async task records (who runs one is :class:`Coordination`'s)."""

    @abstractmethod
    def add(self, task: TaskRecord) -> None: ...

    @abstractmethod
    def get(self, tenant: str, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    def finish(self, task_id: str, status: int, result: dict[str, Any]) -> None:
        """Record the outcome (and drop the album upload the task read, in the same transaction)."""

    @abstractmethod
    def unfinished(self) -> list[TaskRecord]: ...

    @abstractmethod
    def all(self) -> list[TaskRecord]: ...


class Coordination(ABC):
    """What the server's processes agree on: rate buckets and task leases (rows when shared, memory when not)."""

    @abstractmethod
    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        """Take one token from ``key``'s bucket (``rate``/s, ``burst`` deep); False when empty."""

    @abstractmethod
    def claim_task(self, task_id: str, owner: str, lease_s: float) -> bool:
        """Take (or renew) the right to run an unfinished task for ``lease_s``; False if another owner holds it."""

    @abstractmethod
    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        """Unfinished tasks nobody holds a live lease on (all of them at a process's start), now ``owner``'s."""


class AlbumsStore(ABC):
    """FaceAlbums (Face++ ``/imagepp/v1/facealbum``): their own face rows, groups and kept uploads."""

    @abstractmethod
    def create(self, tenant: str, facealbum_token: str, created: float, max_albums: int | None = None) -> None:
        """Create an empty album. With ``max_albums``, :class:`~faceplus.store.records.AlbumQuotaExceeded` when
        the tenant already owns that many (counted and inserted in one step, so racing creates cannot pass it)."""

    @abstractmethod
    def get(self, tenant: str, facealbum_token: str) -> AlbumRecord | None:
        """The tenant's album with its current face_count, or None."""

    @abstractmethod
    def of_tenant(self, tenant: str, offset: int, limit: int) -> list[AlbumRecord]:
        """The tenant's albums, oldest first."""

    @abstractmethod
    def delete(self, tenant: str, facealbum_token: str) -> None:
        """Delete the album and all its faces."""

    @abstractmethod
    def add_faces(self, tenant: str, facealbum_token: str, faces: Sequence[AlbumFace], max_faces: int) -> int:
        """Add faces (all or none); the new face_count. KeyError: no such album;
        :class:`~faceplus.store.records.AlbumFull` past ``max_faces``."""

    @abstractmethod
    def faces(
        self,
        tenant: str,
        facealbum_token: str,
        *,
        tokens: Sequence[str] | None = None,
        image_id: str | None = None,
        start_token: str | None = None,
        limit: int | None = None,
        embeddings: bool = False,
    ) -> list[AlbumFace]:
        """The album's faces in the order they were added, filtered by ``tokens``/``image_id``, from
        ``start_token`` on (KeyError when that token is not in the album, or no such album), at most ``limit``;
        embeddings only when asked (else None)."""

    @abstractmethod
    def set_groups(
        self, tenant: str, facealbum_token: str, groups: dict[str, tuple[str, int | None]], *, manual: bool
    ) -> list[str]:
        """Set (group_id, ungrouped_reason) per face token; the tokens changed. ``manual`` (updateface) pins
        the faces; otherwise (a grouping task) pinned faces are left as they are."""

    @abstractmethod
    def new_group_ids(self, tenant: str, facealbum_token: str, n: int) -> list[str]:
        """``n`` group ids never used before in this album ("1", "2", ...), taken atomically."""

    @abstractmethod
    def delete_faces(self, tenant: str, facealbum_token: str, tokens: Sequence[str]) -> list[str]:
        """Delete the album's faces among ``tokens``; the tokens deleted."""

    @abstractmethod
    def put_upload(self, tenant: str, upload_id: str, data: bytes, created: float) -> None:
        """Keep an image an async addimage/searchimage task will read (params ``upload_id``): it is deleted in
        the transaction that records the task's outcome (``tasks.finish``), so a task cut short (kill -9) finds
        it again when it is run again."""

    @abstractmethod
    def get_upload(self, tenant: str, upload_id: str) -> bytes | None:
        """The kept image (left in place); None when gone."""

    @abstractmethod
    def drop_upload(self, tenant: str, upload_id: str) -> None:
        """Delete a kept image whose task will not run (it could not be queued)."""


class AuditLog(ABC):
    """Every call that creates, changes or erases data: when, which key, which route, which ids, the outcome."""

    @abstractmethod
    def add(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    def entries(self, since: float | None = None, api_key: str | None = None, limit: int = 10_000) -> list[AuditEntry]:
        """Entries at or after ``since`` (of ``api_key`` when given), oldest first."""

    @abstractmethod
    def prune(self, before: float) -> int:
        """Delete entries older than ``before``; how many."""


class Ledger(ABC):
    """Which files ``faceplus index`` finished, per FaceSet (in the store so either backend can be bulk-indexed)."""

    @abstractmethod
    def entries(self, tenant: str, faceset_token: str) -> dict[str, LedgerEntry]:
        """path -> entry of every file finished for this FaceSet."""

    @abstractmethod
    def record(self, tenant: str, faceset_token: str, entries: Sequence[LedgerEntry], when: float) -> None:
        """Mark files finished (replacing an earlier entry of the same path), atomically."""


class Erasure(ABC):
    """Erasure of a face token or of a user's faces across every facet, and scrubbing what deleted rows leave.

    One home for the operation that spans facets: the face row, its FaceSet memberships (counts and versions
    follow, so cached search indexes reload), its crop, the images it came from, FaceAlbum faces of that token,
    async tasks naming it and liveness challenges made from it (see :mod:`faceplus.store.erasure`).
    """

    def __init__(self) -> None:
        self._scrubber: Scrubber | None = None
        self._scrubber_made = threading.Lock()

    @abstractmethod
    def erase(self, tenant: str | None, face_tokens: Sequence[str] = (), user_ids: Sequence[str] = ()) -> ErasureResult:
        """Erase the given face tokens (FaceSet faces and FaceAlbum faces) and every face carrying one of
        ``user_ids``, of ``tenant`` (None: of any tenant, for the operator's command line), in one transaction."""

    @abstractmethod
    def scrub(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """Remove the leftovers of deleted rows from storage (called after erasures and sweeps)."""

    def scrub_after_erasure(self, tables: Sequence[str] = ERASE_TABLES) -> None:
        """Scrub after an explicit erasure: before returning where that is quick (SQLite), else in the background."""
        self.scrub(tables)

    def scrub_soon(self, tables: Sequence[str]) -> None:
        """Scrub in the background (sweeps): requests made while a scrub runs are coalesced into the next one."""
        self.scrubber().request(tables)

    def wait_scrubbed(self, timeout: float | None = None) -> bool:
        """Block until no background scrub is queued or running (tests, orderly shutdown)."""
        return self.scrubber().wait_idle(timeout)

    def scrubber(self) -> Scrubber:
        with self._scrubber_made:
            if self._scrubber is None:
                self._scrubber = Scrubber(self.scrub)
            return self._scrubber


class Reembedding(ABC):
    """What ``faceplus reembed`` needs: faces of another model, shadow vectors for their new ones, a flip.

    A face's new vector (of the *target* model) is written beside its old one (a shadow row) a batch per
    transaction, so a killed run loses at most a batch. A FaceSet searches the vectors of its *active* model;
    :meth:`switch_faceset` makes the target its active model in one transaction once every member with a kept crop
    has one; then :meth:`fold` replaces the faces' own vectors with the shadows of faces whose FaceSets all switched.
    """

    @abstractmethod
    def model_counts(self) -> dict[str, int]:
        """Faces per model of their stored vector (a shadow vector not folded yet does not count)."""

    @abstractmethod
    def album_model_counts(self) -> dict[str, int]:
        """FaceAlbum faces per model (they keep no crop: reembed leaves them, grouping skips other models')."""

    @abstractmethod
    def facesets(self, target: str) -> list[tuple[str, str]]:
        """(tenant, faceset_token) of the FaceSets not wholly at ``target``: another active model, or members
        whose search vector is another model's; oldest first."""

    @abstractmethod
    def pending(self, target: str, faceset: tuple[str, str] | None, after: str, limit: int) -> list[StoredFace]:
        """Faces with a kept crop and no vector of ``target`` yet, by face_token past ``after``: the members of
        ``faceset`` (tenant, faceset_token), or every face when None."""

    @abstractmethod
    def put(self, target: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Keep new ``target`` vectors (by face token) beside the faces' own, in one transaction."""

    @abstractmethod
    def switch_faceset(self, tenant: str, faceset_token: str, target: str, unready: Collection[str] = ()) -> bool:
        """Make ``target`` the FaceSet's active model in one transaction, when every member with a kept crop
        has a vector of it (members in ``unready``, which could not be re-embedded, do not hold it back).
        Bumps the FaceSet's version. False (and nothing changed) when a member is still missing."""

    @abstractmethod
    def fold(self) -> int:
        """Replace the vector of each face that has a shadow and whose FaceSets all use the shadow's model;
        how many faces moved."""

    @abstractmethod
    def faces_without_crop(self, target: str) -> list[StoredFace]:
        """Faces of another model than ``target`` with no kept crop (they keep their model until re-enrolled)."""


class Liveness(ABC):
    """Liveness challenges (FaceID ``biz_token``)."""

    @abstractmethod
    def add(self, token: BizTokenRecord) -> None:
        """Keep a new challenge (and drop those that expired more than a day ago)."""

    @abstractmethod
    def take(self, tenant: str, biz_token: str, now: float) -> BizTokenRecord | None:
        """Mark the tenant's token used at ``now`` in one step and return it as it was before (``used`` None: this
        call took it; set: it was already used). None: no such token."""


class Store:
    """Everything the API persists, as facets, plus the store's lifecycle.

    A backend builds its facets around one database helper and passes them here; it overrides the lifecycle
    methods (close, and maintain/unavailable where its database needs them).
    """

    #: True when any number of server processes share this store (PostgreSQL); False for a store one process
    #: owns (embedded SQLite). The API never reads it: search, rate limits, task leases and scrubbing are store
    #: operations, and each backend does them the way its sharing allows.
    shared: ClassVar[bool] = False
    #: The driver's exception classes that may mean the database is unavailable (``unavailable`` decides).
    unavailable_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(
        self,
        *,
        keys: KeysStore,
        faces: FacesStore,
        facesets: FaceSetsStore,
        tasks: TasksStore,
        coordination: Coordination,
        albums: AlbumsStore,
        audit: AuditLog,
        ledger: Ledger,
        erasure: Erasure,
        reembed: Reembedding,
        liveness: Liveness,
    ) -> None:
        self.keys = keys
        self.faces = faces
        self.facesets = facesets
        self.tasks = tasks
        self.coordination = coordination
        self.albums = albums
        self.audit = audit
        self.ledger = ledger
        self.erasure = erasure
        self.reembed = reembed
        self.liveness = liveness

    def maintain(self) -> None:
        """Periodic housekeeping (e.g. building search indexes in the database); cheap when nothing to do."""
        return None

    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the database cannot be reached or written (down, full, read-only), not a bug:
        the API answers those 503 DATABASE_UNAVAILABLE. Each backend knows its driver's errors."""
        return False

    def close(self) -> None:
        """Release the database connections (the store is not used after)."""
