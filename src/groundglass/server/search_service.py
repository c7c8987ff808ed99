"""The search service behind ``POST /search``: ranked raw results from the search layer the answers use.

Results come from :mod:`groundglass.answer.search`: the providers in ``search.providers``, tried in
order with failover and a result cache, filtered by the same
:class:`~groundglass.answer.search.filters.SearchFilters`. The local index is the provider ``local``;
``[search] providers = ["local"]`` serves /search from it alone, offline.

:class:`SearchBackend` is the seam: the server uses :class:`ProviderSearch` (the search layer);
anything with the same coroutine can stand in. ``country`` rides with the filters as the asker's
location, to the providers that take one; a server whose providers take no country (the local index
alone) refuses it with a 400 (:mod:`groundglass.server.location`). Several queries in one request
are searched in turn and their results interleaved by rank without duplicate URLs.

``max_tokens_per_page`` caps each result's snippet and ``max_tokens`` all snippets together, in rank
order (a result past the budget keeps its title and URL with an empty snippet). A last_updated filter
makes the search layer read the results' pages (only they say when they changed); results of the local
index are judged by the day the index keeps for their document. Tokens are counted
as four characters, the usual average for English text, since the snippets are not the model's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from groundglass.answer.search.filters import Location
from groundglass.errors import GroundglassError
from groundglass.server.errors import APIError
from groundglass.server.filters import build_filters
from groundglass.server.location import check_location
from groundglass.server.search_modes import narrow_to_mode

if TYPE_CHECKING:
    from groundglass.answer.search.filters import SearchFilters
    from groundglass.answer.types import Source
    from groundglass.config import Settings
    from groundglass.server.schemas import SearchRequest


class SearchBackend(Protocol):
    settings: Settings

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[Source]:
        """Up to ``max_results`` filtered results for ``query``, best first; APIError when none can run."""
        ...


class ProviderSearch:
    """The search layer (providers with failover, cache and filters), as configured by ``[search]``."""

    def __init__(self, settings: Settings) -> None:
        from groundglass.answer.search.web import WebRetriever

        self.settings = settings
        self.retriever = WebRetriever(settings)

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[Source]:
        try:
            sources, report = await self.retriever.asearch(query, filters, max_results)
        except GroundglassError as exc:
            raise APIError(exc.status, str(exc), code=exc.code, param=exc.param) from exc
        if report.error and not sources:
            raise APIError(502, f"no search provider answered: {report.error}", code="search_failed")
        return sources


CHARS_PER_TOKEN = 4


def _snippet(source: Source, max_tokens: int | None, budget: int | None) -> str:
    """The result's text within ``max_tokens`` (per page) and ``budget`` (characters left, None: no cap)."""
    text = source.snippet or source.text
    if max_tokens:
        text = text[: max_tokens * CHARS_PER_TOKEN]
    return text if budget is None else text[: max(0, budget)]


async def run_search(
    backend: SearchBackend, body: SearchRequest, modes: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """The results of ``body``'s queries, interleaved by rank without duplicate URLs, as the API shows
    them (title, url, snippet, date, last_updated, source)."""
    filters = narrow_to_mode(build_filters(body), body.search_mode, modes or {})
    if body.country:
        location = Location(country=body.country)
        check_location(backend.settings, location, search="web", param="country")
        filters = replace(filters, location=location)
    k = body.max_results
    per_query = [await backend.search(q, filters, k) for q in body.queries()]
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    budget = body.max_tokens * CHARS_PER_TOKEN if body.max_tokens else None
    for rank in range(k):
        for hits in per_query:
            if rank < len(hits) and hits[rank].url not in seen:
                s = hits[rank]
                seen.add(s.url)
                snippet = _snippet(s, body.max_tokens_per_page, budget)
                if budget is not None:
                    budget -= len(snippet)
                out.append(
                    {
                        "title": s.title,
                        "url": s.url,
                        "snippet": snippet,
                        "date": s.date,
                        "last_updated": s.last_updated,
                        "source": s.source,
                    }
                )
    return out
