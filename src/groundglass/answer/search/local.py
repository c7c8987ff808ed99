"""The local index as a search provider: its passages come with their text, so nothing is fetched.

Handy as the last provider of a list (answers from your own documents when the web is down) or as
the only one. The index is opened once per provider and searched in a worker thread (the embedder
and SQLite are synchronous).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from groundglass.answer.search.base import ProviderError, SearchResult
from groundglass.answer.search.filters import SearchFilters
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex


class LocalProvider:
    name = "local"
    location_fields: tuple[str, ...] = ()  # documents have no place to prefer
    takes_safe_search = False  # your own documents are not filtered

    def __init__(self, settings: Any, timeout_s: float) -> None:
        self.settings = settings
        self.index_name = settings.search.local.index or settings.retrieval.index
        self.timeout_s = timeout_s
        self._index: LocalIndex | None = None
        self._lock = threading.Lock()

    def configured(self) -> str | None:
        return None

    def fingerprint(self) -> str:
        return f"{self.settings.indexes_dir}/{self.index_name}"

    def _open(self) -> LocalIndex:
        from groundglass.answer.index.store import LocalIndex

        with self._lock:
            if self._index is None:
                self._index = LocalIndex.open(self.settings, self.index_name)
            return self._index

    def _search_sync(self, query: str, max_results: int) -> list[SearchResult]:
        try:
            sources = self._open().search(query, k=max_results)
        except GroundglassError as exc:
            raise ProviderError("unreachable", f"local: {exc}") from exc
        return [
            SearchResult(
                url=s.url,
                title=s.title,
                snippet=s.snippet,
                date=s.date,
                provider=self.name,
                score=s.score,
                text=s.text,
                last_updated=s.last_updated,
            )
            for s in sources
        ]

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.to_thread(self._search_sync, query, max_results)
        except TimeoutError as exc:
            raise ProviderError("timeout", f"local: no answer within {self.timeout_s:g} s") from exc

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None
