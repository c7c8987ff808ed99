"""The local index's file: where it lives, its SQL schema and the migrations from older schemas
(:mod:`.store`'s ``LocalIndex`` opens it and reads and writes the rows)."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from groundglass.answer.embeddings import DIM, MODEL_NAME
from groundglass.errors import GroundglassError, IndexError_

SCHEMA_VERSION = 3
# the version of the chunker's output: it salts the content hashes, so a new version re-chunks every
# document on its next add (tests/answer/test_chunks_version.py fails until it is raised with the
# output). 3: definition terms carried into their descriptions' chunks (schema 3 only added a column)
CHUNKS_VERSION = 3
DB_FILE = "index.sqlite"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  id INTEGER PRIMARY KEY,
  uri TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  date TEXT,
  last_updated TEXT,
  kind TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  schema_version INTEGER NOT NULL DEFAULT {SCHEMA_VERSION},
  n_chunks INTEGER NOT NULL,
  added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY,
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ord INTEGER NOT NULL,
  heading TEXT NOT NULL,
  body TEXT NOT NULL,
  indexed_text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS vectors(
  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
  embedding BLOB NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  indexed_text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, indexed_text) VALUES (new.id, new.indexed_text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, indexed_text) VALUES ('delete', old.id, old.indexed_text);
  DELETE FROM vectors WHERE chunk_id = old.id;
END;
"""
# Upgrades, by the version they start from. 1 -> 2: vectors moved out of `chunks` into their own table;
# 2 -> 3: documents.last_updated, the day the source last changed (a file's modification time, a
# fetched page's Last-Modified), NULL for documents added before it (set when they are added again).
MIGRATIONS = {
    1: """
CREATE TABLE vectors(chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
                     embedding BLOB NOT NULL);
INSERT INTO vectors(chunk_id, embedding) SELECT id, embedding FROM chunks;
DROP TRIGGER chunks_ad;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, indexed_text) VALUES ('delete', old.id, old.indexed_text);
  DELETE FROM vectors WHERE chunk_id = old.id;
END;
ALTER TABLE chunks DROP COLUMN embedding;
""",
    2: "ALTER TABLE documents ADD COLUMN last_updated TEXT;\n",
}
BUMP_GENERATION = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
REQUIRED_TABLES = {"meta", "documents", "chunks", "vectors", "chunks_fts"}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise GroundglassError(
            f"invalid index name {name!r}", "use letters, digits, '.', '_' or '-' (at most 64 characters)"
        )
    return name


def index_dir(settings: Any, name: str) -> Path:
    return Path(settings.indexes_dir) / check_name(name)


def corrupt(name: str, path: Path, detail: str) -> IndexError_:
    return IndexError_(
        f"index '{name}' at {path} is corrupt or not a groundglass index ({detail})",
        f"remove it with `groundglass index remove {name} --yes` and add its sources again",
    )


def create_schema(conn: sqlite3.Connection, settings: Any) -> None:
    """A new index's tables and its meta rows, in one transaction."""
    r = settings.retrieval
    meta = {
        "schema_version": str(SCHEMA_VERSION),
        "embedding_model": MODEL_NAME,
        "dim": str(DIM),
        "chunk_tokens": str(r.chunk_tokens),
        "chunk_overlap": str(r.chunk_overlap),
        "created": now(),
        "updated": now(),
        "generation": "0",
    }
    inserts = "".join(
        f"INSERT OR IGNORE INTO meta(key, value) VALUES ('{k}', '{v}');\n" for k, v in meta.items()
    )
    try:  # one script, one transaction: a crash leaves either no schema or all of it
        conn.executescript("BEGIN IMMEDIATE;\n" + SCHEMA + inserts + "COMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
