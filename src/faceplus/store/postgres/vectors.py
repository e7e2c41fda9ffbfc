"""pgvector's ``vector`` type on the wire: numpy arrays in and out of psycopg, in binary."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format

EMBEDDING_DIM = 128


class _VectorDumper(Dumper):
    """numpy array -> pgvector binary (uint16 dim, uint16 unused, big-endian float32s)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        v = np.asarray(obj, dtype=">f4").reshape(-1)
        return struct.pack(">HH", v.size, 0) + v.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> np.ndarray:
        return np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)


class _VectorTextLoader(Loader):
    def load(self, data: Buffer) -> np.ndarray:
        return np.array(bytes(data)[1:-1].split(b","), dtype=np.float32)


def register_vector(conn: psycopg.Connection) -> None:
    """Teach a connection pgvector's ``vector`` type (as numpy float32 arrays); the extension must exist."""
    row = conn.execute("SELECT to_regtype('vector')::oid").fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("the pgvector extension is not installed in this database (CREATE EXTENSION vector)")
    oid = int(row[0])
    conn.adapters.register_dumper(np.ndarray, type("VectorDumper", (_VectorDumper,), {"oid": oid}))
    conn.adapters.register_loader(oid, _VectorBinaryLoader)
    conn.adapters.register_loader(oid, _VectorTextLoader)


def as_vector(embedding: Any) -> np.ndarray:
    """A float32 vector of the embedding's size, or ValueError (nothing else reaches a vector column)."""
    vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if vector.shape != (EMBEDDING_DIM,):
        raise ValueError(f"embedding must have {EMBEDDING_DIM} values, not {vector.shape}")
    return vector
