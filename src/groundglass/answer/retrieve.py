"""Sources for one request's search queries, from the local index or the live web.

    found = search_index(index, queries, k, keep)       # the local index: milliseconds, synchronous
    pending = WebSearch(retriever, queries, filters, size)  # web: starts at once, in background threads
    ...                                                 # (meanwhile the model pre-fills the prompt's prefix)
    found = pending.result()                            # Found: fused sources, the search reports, budgets

A request can carry several queries (the question and what an image showed; a plan's sub-queries).
Each is searched on its own, the web ones in parallel, and their rankings are fused by reciprocal
rank (:func:`groundglass.answer.rank.rrf_fuse`), so a source found by several queries rises and each
query's best source stays near the top. One query keeps its own scores.

The same :class:`~groundglass.answer.search.filters.SearchFilters` hold for both places: the web
retriever enforces them on results and pages, and here they become a predicate over the index's
sources (domain and publication date; ``search.undated`` decides for sources without a date).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from groundglass.answer import rank
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.types import Source
from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.index.store import LocalIndex
    from groundglass.answer.search.report import SearchReport
    from groundglass.answer.search.web import WebRetriever

SEARCH_MODES: tuple[str, ...] = ("index", "web")
WEB_TIMEOUT_S = 300.0  # a whole web search, all queries; each provider call and page has its own limits


@dataclass
class Found:
    """What the searches found, before the engine's relevance gate and token budget."""

    sources: list[Source]  # fused, best first
    queries: list[str]
    top_k: int | None = None  # web: chunks for the model at the request's context size
    context_tokens: int | None = None  # web: their token budget
    reports: list[SearchReport] = field(default_factory=list)  # web: one per query
    error: str | None = None  # why nothing was found, when nothing was

    def images(self) -> list[dict[str, Any]]:
        """return_images: each query's best images, in query order, without repeats."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.reports:
            for im in r.images:
                out.setdefault(im["image_url"], im)
        return list(out.values())

    def report(self) -> dict[str, Any] | None:
        """The web search report for the answer's metadata (None for the local index)."""
        if not self.reports:
            return None
        first = self.reports[0]
        used = sorted({p for r in self.reports for p in r.providers_used})
        failed = sorted({p for r in self.reports for p in r.providers_failed} - set(used))
        return {
            "context_size": first.context_size,
            "providers_used": used,
            "providers_failed": failed,
            # which provider was given which parts of the asker's location (user_location)
            "location_used_by": {p: f for r in self.reports for p, f in r.location_used_by.items()},
            "images": self.images(),
            "error": self.error,
            "queries": [r.as_dict() for r in self.reports],
        }


def merge(each: Sequence[Found]) -> Found:
    """Several searches as one: sources fused, queries and reports kept in order."""
    sources = fuse([f.sources for f in each])
    reports = [r for f in each for r in f.reports]
    first = each[0] if each else Found([], [])
    error = None
    if not sources:
        reasons = [f.error for f in each if f.error]
        error = "; ".join(dict.fromkeys(reasons)) or ("the web search found nothing" if reports else None)
    return Found(
        sources=sources,
        queries=[q for f in each for q in f.queries],
        top_k=first.top_k,
        context_tokens=first.context_tokens,
        reports=reports,
        error=error,
    )


def source_filter(filters: SearchFilters | None, undated: str = "drop") -> Callable[[Source], bool] | None:
    """A predicate over retrieved sources for ``filters`` (domain, publication and last-updated dates);
    None when they filter nothing."""
    if filters is None or filters == SearchFilters():
        return None

    def keep(source: Source) -> bool:
        return (
            filters.check_domain(source.url) is None
            and filters.check_date(source.date, undated=undated) is None
            and (not filters.has_updated or filters.check_updated(source.last_updated) is None)
        )

    return keep


def fuse(rankings: Sequence[list[Source]]) -> list[Source]:
    """One ranking from several queries' rankings (reciprocal rank fusion; one ranking stays as is).

    Each query's best hit leads, in query order, then the rest as fused: a part of a two-part
    question has its page found by that part's search alone, and fusion ranks the chunks that several
    searches share above it (the docs eval lost gzip.open()'s signature to two chunks of gzip's
    examples that both searches returned, as the page's chunk limit was then spent)."""
    rankings = [r for r in rankings if r]
    if len(rankings) <= 1:
        return list(rankings[0]) if rankings else []
    by_key: dict[tuple[str, str], Source] = {}
    keyed: list[list[tuple[str, str]]] = []
    for ranking in rankings:
        keys = []
        for s in ranking:
            key = (s.url, s.chunk_id or s.text[:200])
            by_key.setdefault(key, s)
            keys.append(key)
        keyed.append(keys)
    fused = dict(rank.rrf_fuse(keyed))
    heads = [keys[0] for keys in keyed if keys]
    order = list(dict.fromkeys([*heads, *fused]))
    return [replace(by_key[key], score=fused[key]) for key in order]


def search_index_each(
    index: LocalIndex, queries: Sequence[str], k: int, keep: Callable[[Source], bool] | None = None
) -> list[Found]:
    """Hybrid search of the local index for each query, filtered by ``keep``: one Found per query."""
    out = []
    for query in queries:
        if keep is None:
            ranking = index.search(query, k=k, mode="hybrid")
        else:  # look further down the ranking so enough sources survive the filter
            ranking = [s for s in index.search(query, k=k * 4, mode="hybrid") if keep(s)][:k]
        out.append(Found(sources=ranking, queries=[query]))
    return out


def search_index(
    index: LocalIndex, queries: Sequence[str], k: int, keep: Callable[[Source], bool] | None = None
) -> Found:
    """Hybrid search of the local index for each query, filtered by ``keep``, fused."""
    each = search_index_each(index, queries, k, keep)
    return Found(sources=fuse([f.sources for f in each]), queries=list(queries))


class WebSearch:
    """Web searches for every query, started at once (background threads); ``result`` waits."""

    def __init__(
        self,
        retriever: WebRetriever,
        queries: Sequence[str],
        filters: SearchFilters | None,
        context_size: str | None,
        top_k: int | None = None,
    ) -> None:
        self.queries = list(queries)
        self._futures = [retriever.submit(q, filters, context_size, top_k=top_k) for q in self.queries]

    def each(self) -> list[Found]:
        """One Found per query, in order (waits for all)."""
        out = []
        for query, future in zip(self.queries, self._futures, strict=True):
            try:
                sources, report = future.result(timeout=WEB_TIMEOUT_S)
            except concurrent.futures.TimeoutError as exc:  # a bare TimeoutError reads as a crash
                self.cancel()
                raise GroundglassError(
                    f"the web search for {query!r} did not finish within {WEB_TIMEOUT_S:g} s",
                    "retry when the machine is less busy, or read fewer pages: a lower "
                    "web_search_options.search_context_size (search.context_size in config.toml)",
                    status=504,
                    code="search_timeout",
                    param="search",
                ) from exc
            out.append(
                Found(
                    sources=sources,
                    queries=[query],
                    top_k=report.top_k,
                    context_tokens=report.context_tokens,
                    reports=[report],
                    error=report.error,
                )
            )
        return out

    def result(self) -> Found:
        """All queries' sources fused into one Found (waits for all)."""
        return merge(self.each())

    def cancel(self) -> None:
        for f in self._futures:
            f.cancel()
