"""Each index's vector matrix, read once per process and kept until the index changes, and the
single BLAS thread a query's matrix-vector product runs on."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

_blas: Any = None


def one_blas_thread() -> Any:
    """Run a matrix-vector product on one BLAS thread.

    One query against 10k-100k rows is bound by memory bandwidth; a second thread buys little and, on a
    busy 2-core machine (llama.cpp pre-filling beside retrieval), threads waiting on each other made
    the product 3-10x slower (1.5-8 ms instead of 0.6 ms at 10k rows).
    """
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


class VectorCache:
    """Per-process cache of each index's vector matrix, keyed by file and ``generation``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def get(self, key: str, generation: int) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            item = self._items.get(key)
        if item and item[0] == generation:
            return item[1], item[2]
        return None

    def put(self, key: str, generation: int, ids: np.ndarray, matrix: np.ndarray) -> None:
        with self._lock:
            self._items[key] = (generation, ids, matrix)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


VECTORS = VectorCache()
