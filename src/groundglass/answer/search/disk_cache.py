"""A bounded key -> bytes store in one SQLite file, for work that a later process can reuse.

Each ``groundglass ask`` is a new process, so what it computed about a page (the page's extracted text,
its chunks' vectors) is kept on disk under ``settings.cache_dir``, keyed by a hash of everything the
result depends on; a changed input is a new key, so nothing is ever stale. At most ``max_rows`` rows,
the least recently written dropped first. A damaged or locked file is never an error: the caller
computes the value instead (and the miss is logged at debug level). The standard library's ``shelve``
and ``dbm`` have no size bound and no safe sharing between processes, hence SQLite (WAL) by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

from groundglass.log import get_logger

log = get_logger(__name__)


def code_digest(modules: Iterable[ModuleType | Path], *extra: bytes) -> bytes:
    """A hash of the source of ``modules`` (and of ``extra``): a cache key part that changes whenever the
    code that computed a stored value does, so a new release never reads an old release's results."""
    h = hashlib.blake2b(digest_size=16)
    for m in modules:
        path = m if isinstance(m, Path) else Path(m.__file__ or "")
        h.update(path.read_bytes())
    for part in extra:
        h.update(part)
    return h.digest()


class DiskCache:
    def __init__(self, path: Path, max_rows: int) -> None:
        self.path = path
        self.max_rows = max_rows

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=2.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS v(key BLOB PRIMARY KEY, vec BLOB NOT NULL)")
            yield conn
        finally:
            conn.close()

    def get(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        if not keys:
            return {}
        try:
            with self._conn() as conn:
                marks = ",".join("?" * len(keys))
                rows = conn.execute(f"SELECT key, vec FROM v WHERE key IN ({marks})", list(keys)).fetchall()
        except (sqlite3.Error, OSError) as exc:
            log.debug("disk_cache_unreadable", path=str(self.path), error=str(exc))
            return {}
        return {bytes(k): v.encode() if isinstance(v, str) else bytes(v) for k, v in rows}

    def put(self, items: dict[bytes, bytes]) -> None:
        if not items:
            return
        try:
            with self._conn() as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO v(key, vec) VALUES (?, ?)", list(items.items()))
                # rowids grow with each write: the smallest are the oldest
                conn.execute("DELETE FROM v WHERE rowid <= (SELECT MAX(rowid) FROM v) - ?", (self.max_rows,))
                conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            log.debug("disk_cache_not_written", path=str(self.path), error=str(exc))
