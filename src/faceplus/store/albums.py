"""FaceAlbum storage (Face++ ``/imagepp/v1/facealbum``): the records and the interface both stores implement.

An album's faces are rows of their own (token, image_id, rectangle, embedding, group), not face rows: they
live as long as the album, not the face-token lifetime, and are not usable in FaceSets. Every method takes
the tenant, like the rest of :class:`faceplus.store.base.Store` (which inherits this interface).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceplus.store.reembedding import LEGACY_MODEL_ID

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


class AlbumStore(ABC):
    """The FaceAlbum part of a store."""

    @abstractmethod
    def create_album(self, tenant: str, facealbum_token: str, created: float, max_albums: int | None = None) -> None:
        """Create an empty album. With ``max_albums``, :class:`AlbumQuotaExceeded` when the tenant already owns
        that many (counted and inserted in one step, so racing creates cannot pass it)."""

    @abstractmethod
    def get_album(self, tenant: str, facealbum_token: str) -> AlbumRecord | None:
        """The tenant's album with its current face_count, or None."""

    @abstractmethod
    def list_albums(self, tenant: str, offset: int, limit: int) -> list[AlbumRecord]:
        """The tenant's albums, oldest first."""

    @abstractmethod
    def delete_album(self, tenant: str, facealbum_token: str) -> None:
        """Delete the album and all its faces."""

    @abstractmethod
    def add_album_faces(self, tenant: str, facealbum_token: str, faces: Sequence[AlbumFace], max_faces: int) -> int:
        """Add faces (all or none); the new face_count. KeyError: no such album; :class:`AlbumFull` past
        ``max_faces``."""

    @abstractmethod
    def album_faces(
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
    def set_album_groups(
        self, tenant: str, facealbum_token: str, groups: dict[str, tuple[str, int | None]], *, manual: bool
    ) -> list[str]:
        """Set (group_id, ungrouped_reason) per face token; the tokens changed. ``manual`` (updateface) pins
        the faces; otherwise (a grouping task) pinned faces are left as they are."""

    @abstractmethod
    def new_album_group_ids(self, tenant: str, facealbum_token: str, n: int) -> list[str]:
        """``n`` group ids never used before in this album ("1", "2", ...), taken atomically."""

    @abstractmethod
    def delete_album_faces(self, tenant: str, facealbum_token: str, tokens: Sequence[str]) -> list[str]:
        """Delete the album's faces among ``tokens``; the tokens deleted."""

    @abstractmethod
    def put_album_upload(self, tenant: str, upload_id: str, data: bytes, created: float) -> None:
        """Keep an image an async addimage/searchimage task will read (params ``upload_id``): it is deleted in
        the transaction that records the task's outcome (``finish_task``), so a task cut short (kill -9) finds
        it again when it is run again."""

    @abstractmethod
    def get_album_upload(self, tenant: str, upload_id: str) -> bytes | None:
        """The kept image (left in place); None when gone."""

    @abstractmethod
    def drop_album_upload(self, tenant: str, upload_id: str) -> None:
        """Delete a kept image whose task will not run (it could not be queued)."""
