"""Page chunk vectors on disk, keyed by a hash of the model and the chunk's text.

``rank_pages`` looks here before embedding a web page's chunks, so a page read again, by this process
or a later one (each ``groundglass ask`` is a new process), costs no MiniLM time. One SQLite file
under ``settings.cache_dir``; at most ``max_rows`` vectors (~1.5 KB each), the least recently
written dropped first. A damaged or locked file is never an error: the vectors are computed instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from groundglass.log import get_logger

log = get_logger(__name__)

FILE = "page-vectors.sqlite3"
MAX_ROWS = 50_000  # ~75 MB
_SCHEMA = "CREATE TABLE IF NOT EXISTS v(key BLOB PRIMARY KEY, vec BLOB NOT NULL)"


def key(model: str, text: str) -> bytes:
    return hashlib.blake2b(f"{model}\n{text}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


class VectorCache:
    def __init__(self, path: Path, dim: int, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self.dim = dim
        self.max_rows = max_rows

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=2.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        if not keys:
            return {}
        try:
            with self._conn() as conn:
                marks = ",".join("?" * len(keys))
                rows = conn.execute(f"SELECT key, vec FROM v WHERE key IN ({marks})", list(keys)).fetchall()
        except sqlite3.Error as exc:
            log.debug("vector_cache_unreadable", path=str(self.path), error=str(exc))
            return {}
        return {bytes(k): np.frombuffer(v, dtype=np.float32) for k, v in rows if len(v) == 4 * self.dim}

    def put(self, items: dict[bytes, np.ndarray]) -> None:
        if not items:
            return
        try:
            with self._conn() as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO v(key, vec) VALUES (?, ?)",
                                 [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()])
                # rowids grow with each write: the smallest are the oldest
                conn.execute("DELETE FROM v WHERE rowid <= (SELECT MAX(rowid) FROM v) - ?", (self.max_rows,))
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.debug("vector_cache_not_written", path=str(self.path), error=str(exc))
