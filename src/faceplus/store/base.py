"""The storage interface: API keys, face tokens, FaceSets and async tasks, with no SQL in sight.

The embedded backend (:mod:`faceplus.store.sqlite`) and the server backend (:mod:`faceplus.store.postgres`)
implement it. Every face and FaceSet method takes the tenant (the api_key
that owns the rows) so no backend can leak one tenant's data to another by forgetting a filter in
a caller. Methods that change a FaceSet's membership return its new ``version``; the store owns search
(the embedded store keeps its in-process index in step with its own writes, PostgreSQL searches its rows).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from faceplus.store.albums import AlbumStore
from faceplus.store.ledger import LedgerStore
from faceplus.store.reembedding import LEGACY_MODEL_ID, ReembedStore
from faceplus.store.security import SecurityStore

#: How long a claimed async task stays its worker's before another may take it over (seconds).
TASK_LEASE_S = 60.0


class StoreError(Exception):
    """A storage-level refusal the API maps to a Face++ error (e.g. duplicate outer_id)."""


class OuterIdExists(StoreError):
    """Another FaceSet of this tenant already uses the outer_id."""


class FaceSetQuotaExceeded(StoreError):
    """The tenant already has as many FaceSets as it may (checked and created in one step, across workers)."""


class ModelMismatch(StoreError):
    """A search asked with one identity model's vector of a FaceSet whose faces are another model's.

    ``model`` is the FaceSet's (its active model: the one its search index holds)."""

    def __init__(self, faceset_token: str, model: str) -> None:
        super().__init__(f"FaceSet {faceset_token} holds embeddings of {model or 'no model yet'}")
        self.faceset_token = faceset_token
        self.model = model


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key; the secret is stored only as a salted KDF hash."""

    api_key: str
    secret_hash: bytes
    salt: bytes
    kdf: str
    created: float
    revoked: float | None = None
    name: str = ""


@dataclass
class FaceCrop:
    """The face region of a token's image, kept so face/analyze can compute anything for the token later.

    ``data`` is a lossless PNG of the region; ``meta`` (JSON) says where the region sat in the image and
    what detection found there (see :mod:`faceplus.crops`). It lives exactly as long as its face row.
    """

    data: bytes
    meta: dict[str, Any]


@dataclass
class FaceRecord:
    """One detected face: what detect returned, plus the embedding search needs."""

    tenant: str
    face_token: str
    embedding: np.ndarray
    face_rectangle: dict[str, int]
    image_id: str
    created: float
    user_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: Saved with the face by ``add_faces`` when given; never loaded by ``get_faces`` (see ``get_crops``).
    crop: FaceCrop | None = None
    #: The identity model that made ``embedding`` (``Engine.model_id``); callers that embed always pass it.
    model: str = LEGACY_MODEL_ID


@dataclass
class FaceSetRecord:
    tenant: str
    faceset_token: str
    outer_id: str
    display_name: str
    user_data: str
    tags: list[str]
    created: float
    face_count: int = 0
    version: int = 0
    #: The identity model of the vectors its search uses (its *active* model). "": none yet; the first faces
    #: added to an empty FaceSet set it when none of them is of its model. ``faceplus reembed`` moves it.
    model: str = ""

    def insert_values(self) -> tuple[str, str, str, str, str, str, float, str]:
        """The values a store saves a new FaceSet with: faceset_token, tenant, outer_id, display_name,
        user_data, tags (as JSON text), created, model."""
        return (
            self.faceset_token,
            self.tenant,
            self.outer_id,
            self.display_name,
            self.user_data,
            json.dumps(self.tags),
            self.created,
            self.model,
        )


@dataclass(frozen=True)
class MembershipChange:
    """The outcome of adding/removing face tokens to/from a FaceSet."""

    changed: list[str]
    failures: list[tuple[str, str]]
    face_count: int
    version: int


@dataclass(frozen=True)
class NewMembers:
    """Face tokens to add to a FaceSet as it is created, in the same transaction (whole or absent after a crash)."""

    tokens: Sequence[str]
    live_after: float
    max_faces: int


@dataclass
class TaskRecord:
    tenant: str
    task_id: str
    kind: str
    params: dict[str, Any]
    status: int  # Face++: -1 failed, 0 running/queued, 1 done
    created: float
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class FaceSetVectors:
    """A FaceSet's members and their embeddings of its active ``model``, as of ``version``.

    Members with no vector of that model (faces of another model not re-embedded yet) are left out."""

    tokens: list[str]
    vectors: np.ndarray  # (n, 128) float32
    version: int
    model: str = LEGACY_MODEL_ID


@dataclass
class BizTokenRecord:
    """A liveness challenge (FaceID ``biz_token``): its actions, the reference face, lifetime and use.

    ``used`` is when a verify took it (None: not yet); a token is taken once, whatever the verify's outcome.
    """

    tenant: str
    biz_token: str
    actions: str  # comma-separated, in order
    face_token: str  # the reference face (ref1)
    created: float
    expires: float
    used: float | None = None


class Store(LedgerStore, SecurityStore, AlbumStore, ReembedStore, ABC):
    """Everything the API persists. Each write is durable when the method returns."""

    #: True when any number of server processes share this store (PostgreSQL); False for a store one process
    #: owns (embedded SQLite). The API never reads it: search, rate limits, task leases and scrubbing are store
    #: operations below, and each backend does them the way its sharing allows.
    shared: ClassVar[bool] = False

    # -- search and coordination (the API's only way to them) -------------------------------------
    @abstractmethod
    def search_faceset(
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
        active model is another raises :class:`ModelMismatch` (None: not checked). ``version`` is the FaceSet's
        version the caller has just read (its search must see at least that state); None: the store reads it.
        Raises KeyError when the FaceSet does not exist.
        """

    @abstractmethod
    def take_rate_token(self, key: str, rate: float, burst: float) -> bool:
        """Take one token from ``key``'s bucket (``rate``/s, ``burst`` deep); False when empty."""

    @abstractmethod
    def claim_task(self, task_id: str, owner: str, lease_s: float) -> bool:
        """Take (or renew) the right to run an unfinished task for ``lease_s``; False if another owner holds it."""

    @abstractmethod
    def claim_stale_tasks(self, owner: str, lease_s: float) -> list[TaskRecord]:
        """Unfinished tasks nobody holds a live lease on (all of them at a process's start), now ``owner``'s."""

    def maintain(self) -> None:
        """Periodic housekeeping (e.g. building search indexes in the database); cheap when nothing to do."""
        return None

    # -- keys -----------------------------------------------------------------------------------
    @abstractmethod
    def add_key(self, key: ApiKeyRecord) -> None: ...

    @abstractmethod
    def get_key(self, api_key: str) -> ApiKeyRecord | None: ...

    @abstractmethod
    def list_keys(self) -> list[ApiKeyRecord]: ...

    @abstractmethod
    def revoke_key(self, api_key: str, when: float) -> bool:
        """Mark a key revoked; False if there is no such live key."""

    # -- faces ----------------------------------------------------------------------------------
    @abstractmethod
    def add_faces(self, faces: Sequence[FaceRecord]) -> None: ...

    @abstractmethod
    def get_faces(self, tenant: str, tokens: Sequence[str], live_after: float) -> dict[str, FaceRecord]:
        """The tenant's faces among ``tokens`` that are in a FaceSet or were created after ``live_after``."""

    @abstractmethod
    def set_user_id(self, tenant: str, face_token: str, user_id: str) -> None: ...

    @abstractmethod
    def user_ids(self, tenant: str, tokens: Sequence[str]) -> dict[str, str]: ...

    @abstractmethod
    def facesets_of_face(self, tenant: str, face_token: str) -> list[FaceSetRecord]: ...

    @abstractmethod
    def sweep_faces(self, created_before: float) -> int:
        """Delete faces created before the cutoff that belong to no FaceSet; returns how many."""

    # -- face crops (face/analyze's pixels; deleted with their face row) ---------------------------
    @abstractmethod
    def get_crops(self, tenant: str, tokens: Sequence[str]) -> dict[str, FaceCrop]:
        """The kept crops of the tenant's faces among ``tokens`` (callers check liveness first)."""

    @abstractmethod
    def drop_lapsed_crops(self, tenant: str, live_after: float) -> int:
        """Delete the crops of the tenant's faces that are no longer live (created at or before ``live_after``
        and in no FaceSet), e.g. right after a removal ended them; returns how many."""

    # -- images (only when the server keeps uploaded images) -------------------------------------
    @abstractmethod
    def put_image(self, tenant: str, image_id: str, data: bytes, created: float) -> None: ...

    @abstractmethod
    def get_image(self, tenant: str, image_id: str) -> bytes | None: ...

    # -- FaceSets -------------------------------------------------------------------------------
    @abstractmethod
    def create_faceset(
        self, faceset: FaceSetRecord, max_facesets: int | None = None, members: NewMembers | None = None
    ) -> MembershipChange:
        """Create the FaceSet and add ``members`` in one transaction (as :meth:`add_to_faceset` would).

        Raises :class:`OuterIdExists` when the tenant already has that outer_id, and
        :class:`FaceSetQuotaExceeded` when it already has ``max_facesets`` FaceSets."""

    @abstractmethod
    def get_faceset(
        self, tenant: str, *, faceset_token: str | None = None, outer_id: str | None = None
    ) -> FaceSetRecord | None: ...

    @abstractmethod
    def list_facesets(self, tenant: str, tags: Sequence[str], offset: int, limit: int) -> list[FaceSetRecord]:
        """The tenant's FaceSets carrying every tag in ``tags``, oldest first."""

    @abstractmethod
    def update_faceset(self, tenant: str, faceset_token: str, changes: dict[str, Any]) -> FaceSetRecord:
        """Change outer_id/display_name/user_data/tags; raises :class:`OuterIdExists`."""

    @abstractmethod
    def delete_faceset(self, tenant: str, faceset_token: str, *, only_if_empty: bool = False) -> bool:
        """Delete the FaceSet (and its memberships); with ``only_if_empty``, only when it has no members at that
        moment, checked and deleted in one step. False when it was kept for having members."""

    @abstractmethod
    def add_to_faceset(
        self, tenant: str, faceset_token: str, tokens: Sequence[str], live_after: float, max_faces: int
    ) -> MembershipChange:
        """Add live tenant faces; failures are (token, reason) with Face++ reasons."""

    @abstractmethod
    def remove_from_faceset(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None) -> MembershipChange:
        """Remove ``tokens`` (all members when None)."""

    @abstractmethod
    def faceset_tokens(self, tenant: str, faceset_token: str, offset: int, limit: int) -> list[str]:
        """Member tokens in the order they were added."""

    @abstractmethod
    def faceset_vectors(self, tenant: str, faceset_token: str, tokens: Sequence[str] | None = None) -> FaceSetVectors:
        """The FaceSet's vectors of its active model (only those of ``tokens`` when given); KeyError: no FaceSet."""

    # -- async tasks ----------------------------------------------------------------------------
    @abstractmethod
    def add_task(self, task: TaskRecord) -> None: ...

    @abstractmethod
    def get_task(self, tenant: str, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    def finish_task(self, task_id: str, status: int, result: dict[str, Any]) -> None: ...

    @abstractmethod
    def unfinished_tasks(self) -> list[TaskRecord]: ...

    # -- liveness biz_tokens (faceplus.liveness; not abstract: a store without them serves no liveness) ------
    def add_biz_token(self, token: BizTokenRecord) -> None:
        """Keep a new challenge (and drop those that expired more than a day ago)."""
        raise NotImplementedError

    def take_biz_token(self, tenant: str, biz_token: str, now: float) -> BizTokenRecord | None:
        """Mark the tenant's token used at ``now`` in one step and return it as it was before (``used`` None: this
        call took it; set: it was already used). None: no such token."""
        raise NotImplementedError

    # -- whole-store export (``faceplus migrate``) -------------------------------------------------
    @abstractmethod
    def iter_faces(self, batch: int = 1000) -> Iterator[list[FaceRecord]]:
        """Every face of every tenant, lapsed or not, in batches ordered by face_token."""

    @abstractmethod
    def all_facesets(self) -> list[FaceSetRecord]:
        """Every FaceSet of every tenant, oldest first."""

    @abstractmethod
    def all_tasks(self) -> list[TaskRecord]: ...

    @abstractmethod
    def iter_images(self) -> Iterator[tuple[str, str, bytes, float]]:
        """Every kept image as (tenant, image_id, data, created)."""

    #: The driver's exception classes that may mean the database is unavailable (``unavailable`` decides).
    unavailable_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the database cannot be reached or written (down, full, read-only), not a bug:
        the API answers those 503 DATABASE_UNAVAILABLE. Each backend knows its driver's errors."""
        return False

    @abstractmethod
    def close(self) -> None: ...
