"""Identity model families: each knows its chip geometry, whether flip TTA means anything for it, its model tag
and how to load it (in the manner of insightface's ``model_zoo``: one small class per family, one shape).

``FACEPLUS_EMBEDDER`` picks one: ``sface`` (default) / ``sface-int8`` or ``resnet`` / ``resnet-int8`` (dlib's ResNet).

=============  ============================================  =================================================
family         chip                                          settings that apply
=============  ============================================  =================================================
SFace          112 px, 5 key points -> ArcFace template      none (one pass; flip TTA added nothing on lfw-dev)
dlib ResNet    150 px dlib chip (padding 0.25), 68 or 5 pts  ``FACEPLUS_ALIGNMENT``, ``FACEPLUS_FLIP_TTA``
=============  ============================================  =================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

import numpy as np

from faceplus.chips import IDENTITY, arcface_chips, face_chips, keypoints_from_68
from faceplus.models import resnet_onnx, sface
from faceplus.models.identity import EmbeddingModel
from faceplus.results import Face
from faceplus.settings import EMBEDDERS, EngineSettings


class Embedder(Protocol):
    """A loaded identity model: raw descriptors ``[N, 128]`` of its family's chips."""

    #: The tag stored with every embedding this model makes (faceplus.models.identity).
    model: EmbeddingModel

    def embed(self, chips: np.ndarray) -> np.ndarray: ...


class IdentityFamily(Protocol):
    """What the engine asks of a family, all known without loading the network."""

    #: Chips are ``[N, chip_size, chip_size, 3]`` uint8 RGB.
    chip_size: ClassVar[int]
    #: The chip alignments evaluation embeds every face with (name -> ``alignment`` for :meth:`chips`), so one
    #: run can report what each adds (``faceplus eval lfw``); the first is the default.
    chip_variants: ClassVar[dict[str, int | None]]

    @property
    def flip_tta(self) -> bool:
        """True when embeddings are the mean of a chip's and its mirror's descriptors."""
        ...

    def embedding_model(self) -> EmbeddingModel: ...

    def chips(self, rgb: np.ndarray, faces: Sequence[Face], alignment: int | None = None) -> np.ndarray: ...

    def load(self, threads: int | None = None) -> Embedder: ...


def face_keypoints(face: Face) -> np.ndarray:
    """The face's 5 ArcFace key points: the detector's own where it gave them, else derived from dlib's 68."""
    if face.keypoints is not None:
        return face.keypoints
    if face.landmarks68 is None:
        raise ValueError("a face without key points or 68 landmarks cannot be aligned for SFace")
    return keypoints_from_68(face.landmarks68)


class SFaceFamily:
    """SFace (``sface`` fp32, ``sface-int8``): 112 px chips on the ArcFace 5-point template, one pass (alignment
    and flip settings do not apply)."""

    chip_size: ClassVar[int] = sface.CHIP_SIZE
    chip_variants: ClassVar[dict[str, int | None]] = {"arcface": None}
    flip_tta = False

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    def embedding_model(self) -> EmbeddingModel:
        return sface.embedding_model(self.settings.embedder)

    def chips(self, rgb: np.ndarray, faces: Sequence[Face], alignment: int | None = None) -> np.ndarray:
        """``alignment`` is dlib's (68 or 5 of its points) and means nothing here: SFace's chip has one geometry."""
        return arcface_chips(rgb, [face_keypoints(f) for f in faces], self.chip_size)

    def load(self, threads: int | None = None) -> Embedder:
        return sface.SFaceEmbedder(threads, embedder=self.settings.embedder)


class DlibResnetFamily:
    """dlib's ResNet (``resnet`` fp32, ``resnet-int8``): dlib's 150 px chip on 68 (default) or 5 points, flip TTA."""

    chip_size: ClassVar[int] = IDENTITY.size
    chip_variants: ClassVar[dict[str, int | None]] = {"a5": 5, "a68": 68}

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    @property
    def flip_tta(self) -> bool:
        return self.settings.flip_tta

    def embedding_model(self) -> EmbeddingModel:
        return resnet_onnx.embedding_model(self.settings.embedder)

    def chips(self, rgb: np.ndarray, faces: Sequence[Face], alignment: int | None = None) -> np.ndarray:
        """On lfw-dev, chips aligned on all 68 points matched better than dlib's 5-point chips (``faceplus eval
        lfw``): the fit over 68 points is less sensitive to one misplaced point."""
        alignment = alignment or self.settings.alignment
        points = [f.landmarks68 if alignment == 68 and f.landmarks68 is not None else f.landmarks5 for f in faces]
        return face_chips(rgb, points, IDENTITY)

    def load(self, threads: int | None = None) -> Embedder:
        return resnet_onnx.OnnxFaceEmbedder(threads, embedder=self.settings.embedder)


FAMILIES: dict[str, type[SFaceFamily] | type[DlibResnetFamily]] = {
    "sface": SFaceFamily,
    "sface-int8": SFaceFamily,
    "resnet": DlibResnetFamily,
    "resnet-int8": DlibResnetFamily,
}


def identity_family(settings: EngineSettings) -> IdentityFamily:
    """The family ``settings.embedder`` (``FACEPLUS_EMBEDDER``) names."""
    if settings.embedder not in FAMILIES:
        raise ValueError(f"unknown embedder {settings.embedder!r}; choose one of {EMBEDDERS}")
    return FAMILIES[settings.embedder](settings)


def embedding_model(embedder: str) -> EmbeddingModel:
    """The tag of the vectors ``embedder`` makes, without loading or converting the model."""
    return identity_family(EngineSettings(embedder=embedder)).embedding_model()
