"""Page chunk vectors on disk, keyed by a hash of the model and the chunk's text.

``rank_pages`` looks here before embedding a web page's chunks, so a page read again, by this process
or a later one (each ``groundglass ask`` is a new process), costs no MiniLM time. One SQLite file
under ``settings.cache_dir`` (:class:`~groundglass.answer.search.disk_cache.DiskCache`); at most
``max_rows`` vectors (~1.5 KB each), the least recently written dropped first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from groundglass.answer.search.disk_cache import DiskCache

FILE = "page-vectors.sqlite3"
MAX_ROWS = 50_000  # ~75 MB


def key(model: str, text: str) -> bytes:
    return hashlib.blake2b(f"{model}\n{text}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


class VectorCache:
    def __init__(self, path: Path, dim: int, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self.dim = dim
        self._store = DiskCache(path, max_rows)

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        return {
            k: np.frombuffer(v, dtype=np.float32)
            for k, v in self._store.get(keys).items()
            if len(v) == 4 * self.dim
        }

    def put(self, items: dict[bytes, np.ndarray]) -> None:
        self._store.put({k: np.asarray(v, dtype=np.float32).tobytes() for k, v in items.items()})
