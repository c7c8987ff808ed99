"""The search service behind ``POST /search``: ranked raw results from the search layer the answers use.

Results come from :mod:`groundglass.answer.search`: the providers in ``search.providers``, tried in
order with failover and a result cache, filtered by the same
:class:`~groundglass.answer.search.filters.SearchFilters`. The local index is the provider ``local``;
``[search] providers = ["local"]`` serves /search from it alone, offline.

:class:`SearchBackend` is the seam: the server uses :class:`ProviderSearch` (the search layer);
anything with the same coroutine can stand in. ``country`` is validated and passed on; providers
that know no country ignore it. Several queries in one request are searched in turn and their results
interleaved by rank without duplicate URLs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from groundglass.errors import GroundglassError
from groundglass.server.errors import APIError
from groundglass.server.filters import build_filters
from groundglass.server.search_modes import narrow_to_mode

if TYPE_CHECKING:
    from groundglass.answer.search.filters import SearchFilters
    from groundglass.answer.types import Source
    from groundglass.config import Settings
    from groundglass.server.schemas import SearchRequest


class SearchBackend(Protocol):
    async def search(
        self, query: str, filters: SearchFilters, max_results: int, country: str | None = None
    ) -> list[Source]:
        """Up to ``max_results`` filtered results for ``query``, best first; APIError when none can run."""
        ...


class ProviderSearch:
    """The search layer (providers with failover, cache and filters), as configured by ``[search]``."""

    def __init__(self, settings: Settings) -> None:
        from groundglass.answer.search.web import WebRetriever

        self.retriever = WebRetriever(settings)

    async def search(
        self, query: str, filters: SearchFilters, max_results: int, country: str | None = None
    ) -> list[Source]:
        try:
            sources, report = await self.retriever.asearch(query, filters, max_results)
        except GroundglassError as exc:
            raise APIError(exc.status, str(exc), code=exc.code, param=exc.param) from exc
        if report.error and not sources:
            raise APIError(502, f"no search provider answered: {report.error}", code="search_failed")
        return sources


def _snippet(source: Source, max_tokens: int | None) -> str:
    text = source.snippet or source.text
    return text[: max_tokens * 4] if max_tokens else text


async def run_search(
    backend: SearchBackend, body: SearchRequest, modes: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """The results of ``body``'s queries, interleaved by rank without duplicate URLs, as the API shows
    them (title, url, snippet, date, last_updated)."""
    filters = narrow_to_mode(build_filters(body, body.search_language_filter), body.search_mode, modes or {})
    k = body.max_results
    per_query = [await backend.search(q, filters, k, body.country) for q in body.queries()]
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for rank in range(k):
        for hits in per_query:
            if rank < len(hits) and hits[rank].url not in seen:
                s = hits[rank]
                seen.add(s.url)
                out.append(
                    {
                        "title": s.title,
                        "url": s.url,
                        "snippet": _snippet(s, body.max_tokens_per_page),
                        "date": s.date,
                        "last_updated": s.date,
                    }
                )
    return out
