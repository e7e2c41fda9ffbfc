"""``faceplus reembed``: move every stored face to the engine's identity model, from its kept crop.

After an upgrade that changes the identity model (``Engine.model_id``), stored embeddings are another model's:
the API refuses to compare or search them against new ones (``FACE_MODEL_MISMATCH``/``FACESET_MODEL_MISMATCH``,
docs/API.md). This re-enrols each such face from the crop detect kept for it (:mod:`faceplus.crops`): aligned on
the landmarks stored with the crop, the very chip detect embedded (on lfw-dev the int8 model's vector from the
crop equals, to the last bit, its vector from the whole image), then embedded by the engine. With ``redetect``
the face is first found again in the crop by the engine's detection (the box overlapping the stored one most;
the stored landmarks when none does). A crop kept before the detector's five points were stored with it (SFace
aligns on them) gets them from the primary detector run on the crop (``DetectorChain.keypoints_at``).

FaceSet by FaceSet (oldest first), then the faces in no FaceSet: each batch of new vectors is committed beside
the old ones (a run killed at any point loses at most the batch in flight; a rerun skips what is done), and once
a FaceSet's members all have one, the FaceSet switches to the new model in one transaction (its searches read
the old vectors until then). Faces without a kept crop cannot be re-embedded: they are listed and keep their
model (and stay out of searches of their switched FaceSets) until re-enrolled. FaceAlbum faces keep no crop:
they are counted, and grouping leaves them out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from faceplus.crops import open_crop
from faceplus.engine import Engine
from faceplus.store import Store, StoredFace

log = logging.getLogger("faceplus.reembed")

#: A re-detected face is the token's when its box overlaps the stored box at least this much (IoU).
SAME_FACE_IOU = 0.5


@dataclass
class ReembedReport:
    """What a run did; ``rate`` is faces re-embedded per second of the run."""

    target: str
    reembedded: int = 0
    redetected: int = 0  # of those, found again by detection (``redetect``; the rest from the stored landmarks)
    failed: list[tuple[StoredFace, str]] = field(default_factory=list)
    switched: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # FaceSets that could not switch yet
    without_crop: list[StoredFace] = field(default_factory=list)
    album_faces: dict[str, int] = field(default_factory=dict)  # FaceAlbum faces of other models
    folded: int = 0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def rate(self) -> float:
        return self.reembedded / self.seconds if self.seconds > 0 else 0.0


def embed_crop(engine: Engine, data: bytes, meta: dict[str, Any], redetect: bool = False) -> tuple[np.ndarray, bool]:
    """The engine's embedding of the kept crop's face, and whether detection found it again (``redetect``)."""
    decoded, stored = open_crop(data, meta)
    candidates = engine.detect(decoded, embed=False) if redetect else []
    found = [f for f in candidates if f.box.iou(stored.box) >= SAME_FACE_IOU]
    face = max(found, key=lambda f: f.box.iou(stored.box)) if found else stored
    if face.keypoints is None:  # a crop kept before its detector's points were: the points detect would have given
        face.keypoints = engine.detectors.keypoints_at(decoded.rgb, face.box)
    engine.embed_faces(decoded.rgb, [face])
    assert face.embedding is not None
    return np.asarray(face.embedding, np.float32), bool(found)


class Reembedder:
    """One run over a store with one engine (``target`` is the engine's model id)."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        *,
        batch: int = 64,
        progress: bool = True,
        redetect: bool = False,
        stop: threading.Event | None = None,
        after_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.target = engine.model_id
        self.batch = batch
        self.progress = progress
        self.redetect = redetect
        self.stop = stop or threading.Event()
        self.after_batch = after_batch  # called with the faces done so far (tests: a slow run to kill)
        self.report = ReembedReport(self.target)
        self._unready: set[str] = set()  # faces whose crop failed this run: they do not hold a FaceSet back

    def pending_total(self) -> int:
        """Faces to do (an estimate for the progress bar: faces of other models that have a crop)."""
        counts = self.store.reembed.model_counts()
        others = sum(n for model, n in counts.items() if model != self.target)
        return max(0, others - len(self.report.without_crop))

    def run(self) -> ReembedReport:
        start = time.perf_counter()
        self.report.without_crop = self.store.reembed.faces_without_crop(self.target)
        self.report.album_faces = {m: n for m, n in self.store.reembed.album_model_counts().items() if m != self.target}
        bar = tqdm(total=self.pending_total(), unit="face", desc=f"reembed -> {self.target}", disable=not self.progress)
        try:
            for tenant, faceset_token in self.store.reembed.facesets(self.target):
                if not self._faces((tenant, faceset_token), bar):
                    break
                if self.store.reembed.switch_faceset(tenant, faceset_token, self.target, self._unready):
                    self.report.switched.append((tenant, faceset_token))
                else:
                    self.report.kept.append((tenant, faceset_token))
                self.report.folded += self.store.reembed.fold()
            else:
                self._faces(None, bar)  # faces in no FaceSet
                self.report.folded += self.store.reembed.fold()
        finally:
            bar.close()
            self.report.seconds = time.perf_counter() - start
            self.report.stopped = self.stop.is_set()
        return self.report

    def _faces(self, faceset: tuple[str, str] | None, bar: tqdm) -> bool:
        """Re-embed the pending faces of ``faceset`` (None: all), a committed batch at a time; False if stopped."""
        after = ""
        while not self.stop.is_set():
            pending = self.store.reembed.pending(self.target, faceset, after, self.batch)
            if not pending:
                return True
            after = pending[-1].face_token
            vectors = self._embed(pending)
            self.store.reembed.put(self.target, vectors)  # one transaction: the batch is durable now
            self.report.reembedded += len(vectors)
            bar.update(len(pending))
            if self.after_batch is not None:
                self.after_batch(self.report.reembedded)
        return False

    def _embed(self, faces: list[StoredFace]) -> dict[str, np.ndarray]:
        vectors: dict[str, np.ndarray] = {}
        by_tenant: dict[str, list[StoredFace]] = {}
        for face in faces:
            by_tenant.setdefault(face.tenant, []).append(face)
        for tenant, group in by_tenant.items():
            crops = self.store.faces.crops(tenant, [f.face_token for f in group])
            for face in group:
                crop = crops.get(face.face_token)
                if crop is None:  # erased or swept meanwhile
                    continue
                try:
                    vectors[face.face_token], redetected = embed_crop(self.engine, crop.data, crop.meta, self.redetect)
                except Exception as exc:  # a damaged crop: reported, the face keeps its model
                    log.warning("could not re-embed %s: %s", face.face_token, exc)
                    self.report.failed.append((face, f"{type(exc).__name__}: {exc}"))
                    self._unready.add(face.face_token)
                    continue
                self.report.redetected += redetected
        return vectors


def reembed(store: Store, engine: Engine, **options: object) -> ReembedReport:
    """Run :class:`Reembedder` once (options as its constructor's)."""
    return Reembedder(store, engine, **options).run()  # type: ignore[arg-type]
