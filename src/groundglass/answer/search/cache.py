"""Search result cache: one SQLite file under ``settings.cache_dir``, entries expire after a TTL.

Keyed by (provider, provider fingerprint, normalised query, filters, number of results asked), so a
repeated query costs no provider call while it is fresh. Only successful, non-empty answers are
stored; errors never are. Each call opens its own short-lived connection (WAL mode, busy timeout),
which makes the cache safe from several threads and processes at once (the server's workers).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from groundglass.answer.search.base import SearchResult
from groundglass.log import get_logger

log = get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results(
  key TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  query TEXT NOT NULL,
  created REAL NOT NULL,
  expires REAL NOT NULL,
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_expires ON results(expires);
"""


def normalize_query(query: str) -> str:
    return " ".join(query.lower().split())


def cache_key(provider: str, fingerprint: str, query: str, filters: dict[str, Any], max_results: int) -> str:
    blob = json.dumps([provider, fingerprint, normalize_query(query), filters, max_results], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class SearchCache:
    """``get``/``put`` of provider answers; a TTL of 0 turns it into a no-op."""

    def __init__(self, path: Path, ttl_s: float) -> None:
        self.path = Path(path)
        self.ttl_s = float(ttl_s)
        self._ready = False

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None)
        if not self._ready:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._ready = True
        return conn

    def get(self, key: str, now: float | None = None) -> list[SearchResult] | None:
        """The cached results for ``key``, or None when absent or expired (or the cache is broken)."""
        if not self.enabled:
            return None
        now = time.time() if now is None else now
        try:
            with closing(self._connect()) as conn:
                row = conn.execute(
                    "SELECT payload FROM results WHERE key = ? AND expires > ?", (key, now)
                ).fetchone()
        except sqlite3.Error as exc:  # a cache is an optimisation: a broken one must not fail a search
            log.warning("search_cache_unreadable", path=str(self.path), error=str(exc))
            return None
        if row is None:
            return None
        try:
            return [SearchResult.from_dict(d) for d in json.loads(row[0])]
        except (ValueError, TypeError):
            return None

    def put(
        self, key: str, provider: str, query: str, results: list[SearchResult], now: float | None = None
    ) -> None:
        if not self.enabled or not results:
            return
        now = time.time() if now is None else now
        payload = json.dumps([r.as_dict() for r in results], ensure_ascii=False)
        try:
            with closing(self._connect()) as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO results(key, provider, query, created, expires, "
                    "payload) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, provider, query, now, now + self.ttl_s, payload),
                )
                conn.execute("DELETE FROM results WHERE expires <= ?", (now,))
        except sqlite3.Error as exc:
            log.warning("search_cache_unwritable", path=str(self.path), error=str(exc))

    def clear(self) -> int:
        """Drop every entry; returns how many there were."""
        with closing(self._connect()) as conn:
            return conn.execute("DELETE FROM results").rowcount
