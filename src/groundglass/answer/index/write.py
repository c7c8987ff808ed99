"""Writing one document into an index's SQLite file: its ``documents`` row, its chunks and their
vectors, inside a transaction that the caller (``LocalIndex.write`` in :mod:`.store`) holds, so that a
batch of documents commits or rolls back as one."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from groundglass.answer.embeddings import DIM
from groundglass.answer.index.documents import Chunk, Document
from groundglass.answer.index.schema import SCHEMA_VERSION, now


@dataclass
class WriteItem:
    """One document ready to store: its chunks and their vectors (``len(chunks)`` rows)."""

    doc: Document
    chunks: list[Chunk]
    vectors: np.ndarray
    content_hash: str


def write_document(conn: sqlite3.Connection, item: WriteItem) -> str:
    """Store one document inside the caller's transaction: its row (replaced when the URI is there
    already, its old chunks deleted), its chunks and their vectors; 'added' or 'updated'."""
    doc, chunks = item.doc, item.chunks
    vectors = np.ascontiguousarray(item.vectors, dtype=np.float32)
    if vectors.shape != (len(chunks), DIM):
        raise ValueError(f"expected {len(chunks)} vectors of {DIM} dims, got {vectors.shape}")
    # the document's columns after its URI, in the order both statements name them
    fields = (
        doc.title,
        doc.date,
        doc.last_updated,
        doc.kind,
        item.content_hash,
        SCHEMA_VERSION,
        len(chunks),
        now(),
    )
    row = conn.execute("SELECT id FROM documents WHERE uri = ?", (doc.uri,)).fetchone()
    if row:
        doc_id = row[0]
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        conn.execute(
            "UPDATE documents SET title=?, date=?, last_updated=?, kind=?, content_hash=?, "
            "schema_version=?, n_chunks=?, added_at=? WHERE id=?",
            (*fields, doc_id),
        )
        outcome = "updated"
    else:
        cur = conn.execute(
            "INSERT INTO documents(uri, title, date, last_updated, kind, content_hash, schema_version, "
            "n_chunks, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.uri, *fields),
        )
        doc_id = cur.lastrowid
        outcome = "added"
    for i, c in enumerate(chunks):
        cur = conn.execute(
            "INSERT INTO chunks(doc_id, ord, heading, body, indexed_text) VALUES (?, ?, ?, ?, ?)",
            (doc_id, c.ord, c.heading, c.body, c.indexed_text),
        )
        conn.execute(
            "INSERT INTO vectors(chunk_id, embedding) VALUES (?, ?)",
            (cur.lastrowid, vectors[i].tobytes()),
        )
    return outcome
