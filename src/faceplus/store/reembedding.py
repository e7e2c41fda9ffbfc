"""What ``faceplus reembed`` needs of a store: faces of another model, a shadow for their new vectors, a flip.

A face's new vector (of the *target* model) is written beside its old one (a shadow row, sealed like the
face's embedding on an encrypted data folder) a batch per transaction, so a killed run loses at most a batch
and a rerun goes on from there. A FaceSet searches the vectors of its *active* model; once every member with a
kept crop has a vector of the target model, :meth:`ReembedStore.switch_faceset` makes the target its active
model in one transaction (searches before it read the old vectors, after it the new ones). Then the shadows
of faces whose every FaceSet has switched replace the faces' own vectors (:meth:`ReembedStore.fold_reembedded`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

#: The identity model of every embedding stored before embeddings carried their model (dlib's ResNet, fp32:
#: ``faceplus.models.resnet_onnx.embedding_model("resnet").id``): schema upgrades label existing rows with it.
LEGACY_MODEL_ID = "dlib-resnet-v1/fp32/55533b28a95800a5"


@dataclass(frozen=True)
class StoredFace:
    """A face as re-embedding sees it: whose, which, and the model its vector is of."""

    tenant: str
    face_token: str
    model: str


class ReembedStore(ABC):
    """The re-embedding part of a store (both backends)."""

    @abstractmethod
    def model_counts(self) -> dict[str, int]:
        """Faces per model of their stored vector (a shadow vector not folded yet does not count)."""

    @abstractmethod
    def reembed_facesets(self, target: str) -> list[tuple[str, str]]:
        """(tenant, faceset_token) of the FaceSets not wholly at ``target``: another active model, or members
        whose search vector is another model's; oldest first."""

    @abstractmethod
    def reembed_pending(self, target: str, faceset: tuple[str, str] | None, after: str, limit: int) -> list[StoredFace]:
        """Faces with a kept crop and no vector of ``target`` yet, by face_token past ``after``: the members of
        ``faceset`` (tenant, faceset_token), or every face when None."""

    @abstractmethod
    def put_reembedded(self, target: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Keep new ``target`` vectors (by face token) beside the faces' own, in one transaction."""

    @abstractmethod
    def switch_faceset(self, tenant: str, faceset_token: str, target: str, unready: Collection[str] = ()) -> bool:
        """Make ``target`` the FaceSet's active model in one transaction, when every member with a kept crop
        has a vector of it (members in ``unready``, which could not be re-embedded, do not hold it back).
        Bumps the FaceSet's version. False (and nothing changed) when a member is still missing."""

    @abstractmethod
    def fold_reembedded(self) -> int:
        """Replace the vector of each face that has a shadow and whose FaceSets all use the shadow's model;
        how many faces moved."""

    @abstractmethod
    def faces_without_crop(self, target: str) -> list[StoredFace]:
        """Faces of another model than ``target`` with no kept crop (they keep their model until re-enrolled)."""

    @abstractmethod
    def album_model_counts(self) -> dict[str, int]:
        """FaceAlbum faces per model (they keep no crop: reembed leaves them, grouping skips other models')."""
