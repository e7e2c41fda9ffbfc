"""Optional encryption at rest of the embedded store's biometric values (``FACEPLUS_DATA_KEY``).

With a key (the base64 of 32 random bytes), every face embedding (``faceplus reembed``'s shadow vectors too),
FaceAlbum face embedding and kept face crop is written as ``MAGIC + nonce + AES-256-GCM(value)``: a random
12-byte nonce per value, and the face token as associated data, so a blob moved to another row (another face)
fails to decrypt instead of being accepted.
Decryption happens when the store reads a row (search loads decrypted vectors into its in-memory index), so
nothing else changes. Not encrypted: user ids, FaceSet names, tags and user_data, face rectangles, kept images
(``FACEPLUS_STORE_IMAGES``) and FaceAlbum uploads.

A check value in the ``meta`` table records that the folder is encrypted and under which key, so opening it
with a wrong key, or with none, fails at once with a clear :class:`DataKeyError` instead of returning garbage.
Rows written before a key was set stay readable (plaintext is recognised by its missing ``MAGIC``) until
``faceplus rekey`` encrypts them; :func:`rekey` also changes the key or removes encryption.
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"FPE\x01"  # a plaintext embedding (float32) or crop (PNG) never starts with these bytes
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32
CHECK_NAME = "data_key_check"
CHECK_VALUE = b"faceplus data key check"
#: (table, blob column, associated-data column) of every encrypted value.
ENCRYPTED_COLUMNS = (
    ("faces", "embedding", "face_token"),
    ("face_crops", "data", "face_token"),
    ("album_faces", "embedding", "face_token"),
    ("reembeds", "embedding", "face_token"),  # faceplus reembed's new vectors, until they replace the old
)


class DataKeyError(ValueError):
    """The data key is malformed, wrong, or missing for an encrypted data folder; the message says which."""


def parse_key(text: str) -> bytes:
    """The 32-byte key in ``text`` (standard or URL-safe base64)."""
    raw = text.strip().replace("-", "+").replace("_", "/")  # URL-safe base64 too
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise DataKeyError("FACEPLUS_DATA_KEY is not base64 (make one with `faceplus rekey --generate`)") from e
    if len(key) != KEY_BYTES:
        raise DataKeyError(f"FACEPLUS_DATA_KEY must be the base64 of {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key_text() -> str:
    """A fresh random key, as FACEPLUS_DATA_KEY wants it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class DataCipher:
    """AES-256-GCM with a random nonce per value and the row's token as associated data."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, text: str | None) -> DataCipher | None:
        """The cipher for a FACEPLUS_DATA_KEY value; None when it is empty (no encryption)."""
        return cls(parse_key(text)) if text and text.strip() else None

    def seal(self, data: bytes, token: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, token.encode())

    def open(self, blob: bytes, token: str) -> bytes:
        start = len(MAGIC)
        try:
            return self._aead.decrypt(blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :], token.encode())
        except InvalidTag as e:
            raise DataKeyError(
                f"stored data of {token[:64]} does not decrypt with FACEPLUS_DATA_KEY (a wrong key, or a damaged "
                "or moved value)"
            ) from e


def is_sealed(blob: bytes) -> bool:
    return bytes(blob[: len(MAGIC)]) == MAGIC and len(blob) >= len(MAGIC) + NONCE_BYTES + TAG_BYTES


def seal(cipher: DataCipher | None, data: bytes, token: str) -> bytes:
    """``data`` as stored: encrypted under ``cipher``, or as it is without one."""
    return data if cipher is None else cipher.seal(data, token)


def unseal(cipher: DataCipher | None, blob: bytes, token: str) -> bytes:
    """A stored value back in plaintext (a plaintext value, written before a key was set, is returned as it is)."""
    blob = bytes(blob)
    if not is_sealed(blob):
        return blob
    if cipher is None:
        raise DataKeyError("this data folder is encrypted: set FACEPLUS_DATA_KEY to its key")
    return cipher.open(blob, token)


def check_key(conn: sqlite3.Connection, cipher: DataCipher | None) -> None:
    """Refuse a wrong or missing key for this database now; record the key's check value on first use."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (CHECK_NAME,)).fetchone()
    if row is None:
        if cipher is None:
            return
        sealed = base64.b64encode(cipher.seal(CHECK_VALUE, CHECK_NAME)).decode()
        conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (CHECK_NAME, sealed))
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (CHECK_NAME,)).fetchone()  # another opener's?
    if cipher is None:
        raise DataKeyError("this data folder is encrypted: set FACEPLUS_DATA_KEY to its key (docs/SECURITY.md)")
    try:
        cipher.open(base64.b64decode(row[0]), CHECK_NAME)
    except DataKeyError as e:
        raise DataKeyError(
            "FACEPLUS_DATA_KEY is not the key this data folder is encrypted with (to change keys: faceplus rekey)"
        ) from e


@dataclass
class RekeyResult:
    values: int  # encrypted values rewritten
    tables: dict[str, int]


def rekey(conn: sqlite3.Connection, old: DataCipher | None, new: DataCipher | None) -> RekeyResult:
    """Rewrite every encrypted column from ``old`` to ``new`` (None: plaintext) in one transaction.

    Works from plaintext (first encryption), between keys, and back to plaintext. The caller checkpoints the
    WAL afterwards so the old values leave the data folder (``secure_delete`` zeroes the replaced cells).
    """
    check_key(conn, old)
    counts: dict[str, int] = {}
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, column, token_column in ENCRYPTED_COLUMNS:
            rows = conn.execute(f"SELECT rowid, {token_column}, {column} FROM {table}").fetchall()
            conn.executemany(
                f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                [(seal(new, unseal(old, blob, token), token), rowid) for rowid, token, blob in rows],
            )
            counts[table] = len(rows)
        conn.execute("DELETE FROM meta WHERE key = ?", (CHECK_NAME,))
        check_key(conn, new)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return RekeyResult(sum(counts.values()), counts)
