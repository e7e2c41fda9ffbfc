"""Which identity model made an embedding: the tag every stored embedding carries.

Embeddings of two models live in different spaces: a distance between them means nothing. So every embedding
the engine makes, and every one the store keeps, is tagged with :attr:`EmbeddingModel.id`, and compare, search
and clustering only ever put embeddings with the same tag side by side (``faceplus reembed`` moves stored faces
from one model to another).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class EmbeddingModel:
    """An identity model as stored next to its embeddings.

    ``name``: the network (``dlib-resnet-v1``, ``sface-2021dec``); ``variant``: how it is run (``fp32``,
    ``int8``: a quantised network gives other vectors); ``weights_sha256``: the weight file it was built from.
    """

    name: str
    variant: str
    weights_sha256: str

    @property
    def id(self) -> str:
        """``name/variant/sha256-prefix``: short, stable, and different for any change of vectors."""
        return f"{self.name}/{self.variant}/{self.weights_sha256[:16]}"


@cache
def file_sha256(path: Path) -> str:
    """The sha256 of a weight file (read once per process)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
