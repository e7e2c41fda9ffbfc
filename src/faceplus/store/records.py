"""The store's records and refusals: what every facet of :class:`faceplus.store.interfaces.Store` takes and returns.

Plain data, no SQL: both backends read their rows into these (:mod:`faceplus.store.rows`), and the API, the tools
and the tests build them. Every face, FaceSet, album and task record carries its tenant (the api_key that owns it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceplus.results import FaceCrop as FaceCrop  # the engine makes it, the store keeps it (re-exported)

#: The identity model of every embedding stored before embeddings carried their model (dlib's ResNet, fp32:
#: ``faceplus.models.resnet_onnx.embedding_model("resnet").id``): schema upgrades label existing rows with it.
LEGACY_MODEL_ID = "dlib-resnet-v1/fp32/55533b28a95800a5"

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


@dataclass(frozen=True)
class StoredFace:
    """A face as re-embedding sees it: whose, which, and the model its vector is of."""

    tenant: str
    face_token: str
    model: str


#: Face++ group ids: a face not grouped yet, and one grouping could not place (``ungrouped_reason`` says why).
GROUP_NOT_GROUPED = "-1"
GROUP_UNGROUPED = "0"


class AlbumFull(Exception):
    """The album already holds as many faces as it may."""


class AlbumQuotaExceeded(Exception):
    """The tenant already owns as many FaceAlbums as it may."""


@dataclass
class AlbumRecord:
    tenant: str
    facealbum_token: str
    created: float
    face_count: int = 0


@dataclass
class AlbumFace:
    """One face of a FaceAlbum: where it is, its embedding (when loaded) and its group."""

    face_token: str
    image_id: str
    face_rectangle: dict[str, int]
    created: float
    embedding: np.ndarray | None = None
    group_id: str = GROUP_NOT_GROUPED
    ungrouped_reason: int | None = None
    manual: bool = False
    #: The identity model of ``embedding`` (``Engine.model_id``); grouping and search use only the engine's.
    model: str = LEGACY_MODEL_ID


@dataclass(frozen=True)
class LedgerEntry:
    """One finished file: its version (size, mtime), what was found, the face tokens stored, the user_id."""

    path: str
    size: int
    mtime_ns: int
    status: str  # "faces", "no_face" or "error"
    tokens: list[str]
    user_id: str = ""


@dataclass
class ErasureResult:
    """What one erasure removed."""

    #: Face tokens whose face rows were erased (FaceSet faces), in token order.
    face_tokens: list[str] = field(default_factory=list)
    #: FaceAlbum face tokens erased.
    album_face_tokens: list[str] = field(default_factory=list)
    #: (tenant, faceset_token, new face_count, new version) of every FaceSet that lost members.
    facesets: list[tuple[str, str, int, int]] = field(default_factory=list)
    crops: int = 0
    images: int = 0
    tasks: int = 0

    @property
    def erased(self) -> list[str]:
        return sorted(set(self.face_tokens) | set(self.album_face_tokens))


@dataclass(frozen=True)
class AuditEntry:
    """One audited call. ``object_ids`` maps a kind (face_tokens, faceset_token, ...) to the ids it touched."""

    time: float
    api_key: str
    route: str
    object_ids: dict[str, Any]
    status: int
    result: str  # "ok" or the Face++ error_message
    id: int | None = None
