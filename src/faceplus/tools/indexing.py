"""``faceplus index``: detect and embed every face in a folder of photos and add them to a FaceSet.

Works on the store directly (no HTTP): the faces land in the tenant's FaceSet exactly as if a client
had called detect + faceset/addface, so the API can search them afterwards.

Resumable without duplicates, even after a hard kill:

* Every face gets a *deterministic* token, a hash of (tenant, FaceSet, file path, size, mtime, face
  number). A rerun that meets a file whose faces reached the store before the crash derives the same
  tokens, finds them there and adds nothing new (FaceSet membership is a set, too).
* A side table (``<data_dir>/indexing.sqlite3``) records each finished file by path + size + mtime, so a
  rerun skips finished files without decoding them. It is written *after* the store commit, which is
  why the deterministic tokens are needed for the window between the two commits.
* A file whose size or mtime changed is indexed again and its old faces leave the FaceSet.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from tqdm import tqdm

from faceplus.engine import Engine
from faceplus.errors import FaceplusError
from faceplus.identifiers import FORBIDDEN_TEXT, is_identifier, to_identifier
from faceplus.results import Face
from faceplus.settings import LOCAL_TENANT
from faceplus.store import LEGACY_MODEL_ID, FaceRecord, FaceSetRecord, LedgerEntry, Store

#: Files the engine can decode (by name; the engine still checks the content).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})


def image_files(root: Path, exclude: Sequence[str] = ()) -> list[Path]:
    """Every image file under ``root`` (recursively, symlinks followed), in a stable order.

    ``exclude``: paths relative to ``root`` (POSIX style) or ``fnmatch`` patterns on them to leave out.
    """
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                found.append(Path(folder) / name)
    if exclude:
        exact = set(exclude)
        patterns = [p for p in exclude if any(c in p for c in "*?[")]
        found = [
            p
            for p in found
            if (rel := p.relative_to(root).as_posix()) not in exact and not any(fnmatch(rel, x) for x in patterns)
        ]
    return found


def safe_text(value: str, limit: int = 255) -> str:
    """A folder name made acceptable as a Face++ user_id/outer_id (faceplus.identifiers: NFKC form, refused and
    invisible characters as ``_``): macOS writes names in NFD, and the API would refuse that spelling."""
    return to_identifier(value, limit)


def face_token_for(tenant: str, faceset_token: str, key: FileKey, number: int) -> str:
    """The token of face ``number`` of a file version: the same on every rerun, 32 hex like Face++'s."""
    raw = f"{tenant}\0{faceset_token}\0{key.path}\0{key.size}\0{key.mtime_ns}\0{number}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class FileKey:
    """A file version: absolute path (as walked, not resolved), size and modification time."""

    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileKey:
        st = path.stat()
        return cls(str(path.absolute()), st.st_size, st.st_mtime_ns)


class Ledger:
    """The indexer's view of the store's ledger of finished files (``store.ledger``).

    ``(tenant, faceset, path) -> size, mtime, status, face tokens``, kept by the store itself so that a folder
    can be indexed into either backend and resumed there.
    """

    #: Where earlier versions kept the ledger, beside the SQLite store; imported once, then removed.
    LEGACY_FILE = "indexing.sqlite3"

    def __init__(self, store: Store) -> None:
        self.store = store

    def entries(self, tenant: str, faceset_token: str) -> dict[str, tuple[int, int, list[str]]]:
        """path -> (size, mtime_ns, face tokens) of every finished file."""
        return {p: (e.size, e.mtime_ns, e.tokens) for p, e in self.store.ledger.entries(tenant, faceset_token).items()}

    def sources(self, tenant: str, faceset_token: str) -> dict[str, tuple[str, int]]:
        """face token -> (image path, face number): where each indexed face came from (for crops)."""
        out: dict[str, tuple[str, int]] = {}
        for path, (_, _, tokens) in self.entries(tenant, faceset_token).items():
            for n, token in enumerate(tokens):
                out[token] = (path, n)
        return out

    def record(self, tenant: str, faceset_token: str, rows: Sequence[tuple[FileKey, str, list[str], str]]) -> None:
        """Mark files finished: (file version, status "faces"/"no_face"/"error", tokens, user_id)."""
        entries = [
            LedgerEntry(k.path, k.size, k.mtime_ns, status, tokens, user_id) for k, status, tokens, user_id in rows
        ]
        self.store.ledger.record(tenant, faceset_token, entries, time.time())

    def import_legacy(self, data_dir: Path) -> int:
        """Move the rows of an older version's ledger file in ``data_dir`` into the store; the file is removed."""
        path = Path(data_dir) / self.LEGACY_FILE
        if not path.is_file():
            return 0
        db = sqlite3.connect(path)
        try:
            rows = db.execute(
                "SELECT tenant, faceset_token, path, size, mtime_ns, status, tokens, user_id FROM indexed"
            )
            by_faceset: dict[tuple[str, str], list[LedgerEntry]] = {}
            for tenant, faceset, p, size, mtime, status, tokens, user_id in rows:
                by_faceset.setdefault((tenant, faceset), []).append(
                    LedgerEntry(p, size, mtime, status, json.loads(tokens), user_id)
                )
        finally:
            db.close()
        for (tenant, faceset), entries in by_faceset.items():
            self.store.ledger.record(tenant, faceset, entries, time.time())
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return sum(len(e) for e in by_faceset.values())


@dataclass
class IndexSummary:
    """What a run did; ``skipped`` files were finished by an earlier run."""

    images: int = 0
    faces: int = 0
    no_face: int = 0
    errors: int = 0
    skipped: int = 0
    faces_added: int = 0
    seconds: float = 0.0
    faceset_token: str = ""
    face_count: int = 0
    error_files: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        rate = self.images / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"images indexed: {self.images} ({rate:.1f}/s over {self.seconds:.0f} s); "
            f"already indexed, skipped: {self.skipped}",
            f"faces: {self.faces} (added to the FaceSet: {self.faces_added}); FaceSet now holds {self.face_count}",
            f"files with no face: {self.no_face}",
            f"errors: {self.errors}",
        ]
        out += [f"  {path}: {message}" for path, message in self.error_files[:10]]
        if len(self.error_files) > 10:
            out.append(f"  ... and {len(self.error_files) - 10} more")
        return out


def ensure_faceset(store: Store, tenant: str, outer_id: str) -> FaceSetRecord:
    """The tenant's FaceSet with this outer_id, created if absent."""
    if not outer_id or len(outer_id) > 255 or not is_identifier(outer_id):
        raise ValueError(
            f"a FaceSet outer_id must be 1-255 characters in NFKC form, nothing invisible, none of {FORBIDDEN_TEXT}: "
            f"{outer_id!r}"
        )
    found = store.facesets.get(tenant, outer_id=outer_id)
    if found is not None:
        return found
    record = FaceSetRecord(
        tenant=tenant,
        faceset_token=os.urandom(16).hex(),
        outer_id=outer_id,
        display_name=outer_id,
        user_data="",
        tags=[],
        created=time.time(),
    )
    store.facesets.create(record)
    return record


def user_id_for(root: Path, path: Path) -> str:
    """The name of the folder holding the image, relative to ``root`` ("" for images directly in it)."""
    rel = path.relative_to(root)
    return safe_text(rel.parent.name) if len(rel.parts) > 1 else ""


class Indexer:
    """One indexing run of a folder into one FaceSet."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        tenant: str,
        outer_id: str,
        *,
        max_faces: int = 1_000_000,
        user_id_from_folder: bool = False,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.tenant = tenant
        self.faceset = ensure_faceset(store, tenant, outer_id)
        self.max_faces = max_faces
        self.user_id_from_folder = user_id_from_folder
        self.summary = IndexSummary(faceset_token=self.faceset.faceset_token)
        self.model_id = LEGACY_MODEL_ID  # the engine's, set by ``run`` (the tag stored with each embedding)

    def plan(self, root: Path, exclude: Sequence[str] = ()) -> tuple[list[tuple[Path, FileKey]], list[str]]:
        """Files still to index, and the tokens of changed files' old faces (to drop from the FaceSet)."""
        done = self.ledger.entries(self.tenant, self.faceset.faceset_token)
        todo: list[tuple[Path, FileKey]] = []
        stale: list[str] = []
        for path in image_files(root, exclude):
            key = FileKey.of(path)
            previous = done.get(key.path)
            if previous is not None and previous[:2] == (key.size, key.mtime_ns):
                self.summary.skipped += 1
                continue
            if previous is not None:
                stale += previous[2]
            todo.append((path, key))
        return todo, stale

    def commit(self, root: Path, batch: Sequence[tuple[Path, FileKey, list[Face] | FaceplusError]]) -> None:
        """Store a batch's faces, add them to the FaceSet, then mark its files finished (in that order)."""
        records: list[FaceRecord] = []
        ledger_rows: list[tuple[FileKey, str, list[str], str]] = []
        now = time.time()
        for path, key, result in batch:
            user_id = user_id_for(root, path) if self.user_id_from_folder else ""
            if isinstance(result, FaceplusError):
                self.summary.errors += 1
                self.summary.error_files.append((str(path), f"{result.error_message}: {result}"))
                ledger_rows.append((key, "error", [], user_id))
                continue
            faces = [f for f in result if f.embedding is not None]
            self.summary.images += 1
            self.summary.faces += len(faces)
            if not faces:
                self.summary.no_face += 1
            image_id = hashlib.sha256(f"{key.path}\0{key.size}\0{key.mtime_ns}".encode()).hexdigest()[:32]
            tokens = [face_token_for(self.tenant, self.faceset.faceset_token, key, n) for n in range(len(faces))]
            for token, face in zip(tokens, faces, strict=True):
                assert face.embedding is not None  # faces without one were left out above
                records.append(
                    FaceRecord(
                        tenant=self.tenant,
                        face_token=token,
                        embedding=face.embedding,
                        face_rectangle=face.box.to_facepp(),
                        image_id=image_id,
                        created=now,
                        user_id=user_id,
                        model=self.model_id,
                    )
                )
            ledger_rows.append((key, "faces" if faces else "no_face", tokens, user_id))
        if records:
            tokens = [r.face_token for r in records]
            already = self.store.faces.get(self.tenant, tokens, 0.0)  # stored before an interruption
            fresh = [r for r in records if r.face_token not in already]
            if fresh:
                self.store.faces.add(fresh)
            change = self.store.facesets.add_faces(self.tenant, self.faceset.faceset_token, tokens, 0.0, self.max_faces)
            self.summary.faces_added += len(change.changed)
            self.summary.face_count = change.face_count
            quota = [t for t, reason in change.failures if reason == "QUOTA_EXCEEDED"]
            if quota:
                raise RuntimeError(f"the FaceSet is full ({self.max_faces} faces); {len(quota)} faces not added")
        self.ledger.record(self.tenant, self.faceset.faceset_token, ledger_rows)

    def run(
        self,
        root: Path,
        engine: Engine,
        *,
        workers: int = 1,
        progress: bool = True,
        max_files: int | None = None,
        batch_size: int = 32,
        exclude: Sequence[str] = (),
    ) -> IndexSummary:
        """Index ``root``; stops cleanly (committing what is done) after ``max_files`` or on Ctrl-C."""
        start = time.perf_counter()
        self.model_id = engine.model_id
        todo, stale = self.plan(root, exclude)
        if stale:
            change = self.store.facesets.remove_faces(self.tenant, self.faceset.faceset_token, stale)
            self.summary.face_count = change.face_count
        if max_files is not None:
            todo = todo[:max_files]
        keys = {str(p): k for p, k in todo}
        pending: list[tuple[Path, FileKey, list[Face] | FaceplusError]] = []
        bar = tqdm(total=len(todo), unit="img", disable=not progress, desc=f"indexing into {self.faceset.outer_id}")
        try:
            # closed on Ctrl-C too, so that its worker processes stop before this process exits (else exit waits)
            with closing(engine.detect_many([str(p) for p, _ in todo], workers=workers, landmarks=False)) as found:
                for image, result in found:
                    pending.append((Path(str(image)), keys[str(image)], result))
                    bar.update(1)
                    if len(pending) >= batch_size:
                        batch, pending = pending, []
                        self.commit(root, batch)
                        bar.set_postfix(faces=self.summary.faces, errors=self.summary.errors, refresh=False)
            batch, pending = pending, []
            self.commit(root, batch)  # the last, partial batch: counted before the bar draws its final line
            bar.set_postfix(faces=self.summary.faces, errors=self.summary.errors, refresh=False)
        finally:
            if pending:  # interrupted: what was detected is still kept
                self.commit(root, pending)
            bar.close()
            self.summary.seconds = time.perf_counter() - start
            current = self.store.facesets.get(self.tenant, faceset_token=self.faceset.faceset_token)
            if current is not None:
                self.summary.face_count = current.face_count
        return self.summary


def index_folder(
    root: Path,
    store: Store,
    ledger: Ledger,
    outer_id: str,
    engine: Engine,
    *,
    tenant: str = LOCAL_TENANT,
    workers: int = 1,
    user_id_from_folder: bool = False,
    max_files: int | None = None,
    progress: bool = True,
    max_faces: int = 1_000_000,
    exclude: Sequence[str] = (),
) -> IndexSummary:
    """Index every image under ``root`` into the FaceSet ``outer_id`` of ``tenant`` (see the module doc)."""
    indexer = Indexer(store, ledger, tenant, outer_id, max_faces=max_faces, user_id_from_folder=user_id_from_folder)
    return indexer.run(Path(root), engine, workers=workers, progress=progress, max_files=max_files, exclude=exclude)
