"""Sources from the live web: search (with failover and cache) -> filter -> read -> filter -> rank.

    sources, report = WebRetriever(settings).retrieve("question", filters, "medium")

Reading the results' pages and ranking their passages is :mod:`.reading`.

``search_context_size`` (low/medium/high, ``search.context_sizes``) sets how many results are read
and how much of them reaches the model (``report.top_k`` chunks within ``report.context_tokens``);
the retriever returns up to twice ``top_k`` ranked chunks so the engine's relevance gate has room.

Nothing raises for a failing provider or page: the :class:`~.report.SearchReport` lists every provider tried
(used, cached, failed and why), every result dropped by a filter and every page that could not be
read; when nothing is left, ``sources`` is empty and ``report.error`` says why in one line. Bad
input (an unknown context size) raises :class:`~groundglass.errors.GroundglassError` at once.

Fetched text is untrusted: it only ever travels as ``Source.text``/``title``; the engine's prompt
fences sources as data (see :mod:`groundglass.answer.prompt`).

``retrieve`` is synchronous (it runs its own event loop); ``submit`` runs it in a background thread
and returns a future, which is how the engine overlaps search with prompt processing. Async callers
(the server) await ``aretrieve`` instead. ``search`` returns the provider's results without reading
them (title, URL, snippet, date), for a raw search API, except under a last_updated window, which
only the pages themselves can answer: they are then read, and the results carry ``last_updated``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from groundglass.answer.reader import PageReader, ReadFailure
from groundglass.answer.search.base import ProviderError, SearchResult, http_client
from groundglass.answer.search.cache import SearchCache
from groundglass.answer.search.failover import Failover, FailoverResult, ProviderAttempt, build_providers
from groundglass.answer.search.filters import SearchFilters, parse_when
from groundglass.answer.search.images import PageImage
from groundglass.answer.search.reading import IMAGES_PER_SEARCH, read_and_rank
from groundglass.answer.search.report import SearchReport
from groundglass.answer.types import Source
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.config import SearchContextSize, Settings

log = get_logger(__name__)
T = TypeVar("T")

CACHE_FILE = "search-cache.sqlite3"
_BACKGROUND = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="groundglass-search")


def context_preset(settings: Settings, name: str | None) -> tuple[str, SearchContextSize]:
    size = name or settings.search.context_size
    presets = settings.search.context_sizes
    if size not in presets:
        raise GroundglassError(
            f"search_context_size {size!r} is not one of {', '.join(presets)}",
            "use low, medium or high",
            param="search_context_size",
        )
    return size, presets[size]  # type: ignore[index]


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end from synchronous code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    return _BACKGROUND.submit(asyncio.run, coro).result()


class WebRetriever:
    """Search providers + page reader + ranking, configured by ``settings.search``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache = SearchCache(settings.cache_dir / CACHE_FILE, settings.search.cache_ttl_s)

    def retrieve(
        self,
        query: str,
        filters: SearchFilters | None = None,
        context_size: str | None = None,
        *,
        top_k: int | None = None,
    ) -> tuple[list[Source], SearchReport]:
        context_preset(self.settings, context_size)  # bad input raises here, in the caller's thread
        return run_sync(self.aretrieve(query, filters, context_size, top_k=top_k))

    def submit(
        self,
        query: str,
        filters: SearchFilters | None = None,
        context_size: str | None = None,
        *,
        top_k: int | None = None,
    ) -> concurrent.futures.Future[tuple[list[Source], SearchReport]]:
        """Start :meth:`retrieve` in a background thread (for overlapping it with prompt processing)."""
        context_preset(self.settings, context_size)
        return _BACKGROUND.submit(asyncio.run, self.aretrieve(query, filters, context_size, top_k=top_k))

    def search(
        self, query: str, filters: SearchFilters | None = None, max_results: int | None = None
    ) -> tuple[list[Source], SearchReport]:
        """Provider results only, nothing read: title, URL, snippet and date per result (for a raw
        search API such as ``POST /search``). Domain and known-date/language filters are applied;
        with a date filter, undated results follow ``search.undated``."""
        return run_sync(self.asearch(query, filters, max_results))

    async def asearch(
        self, query: str, filters: SearchFilters | None = None, max_results: int | None = None
    ) -> tuple[list[Source], SearchReport]:
        s = self.settings.search
        size, preset = context_preset(self.settings, None)
        filters = filters or SearchFilters()
        report = SearchReport(
            query=query, context_size=size, top_k=preset.top_k, context_tokens=preset.context_tokens
        )
        if not query.strip():
            report.error = "the search query is empty"
            return [], report
        found = await self._failover(query, filters, max(s.max_results, max_results or 0))
        report.attempts, report.provider, report.cached = found.attempts, found.provider, found.cached
        report.results = len(found.results)
        if found.provider is None:
            report.error = _no_provider(found.attempts)
            return [], report
        out: list[Source] = []
        for r in found.results:
            reason = filters.check_result(r.url, r.date, r.language) or filters.check_date(
                r.date, undated=s.undated
            )
            if reason:
                report.failures.append(ReadFailure(r.url, "filtered", reason))
                continue
            when = parse_when(r.date)
            out.append(
                Source(
                    url=r.url,
                    title=r.title,
                    text=r.text or r.snippet,
                    score=r.score or 0.0,
                    date=when.day if when else None,
                    snippet=r.snippet,
                    source=source_of(r),
                    last_updated=r.last_updated,
                )
            )
        if filters.has_updated:
            out = await self._when_updated(out, filters, max_results or len(out), report)
        return out[: max_results or len(out)], report

    async def _when_updated(
        self, found: list[Source], filters: SearchFilters, want: int, report: SearchReport
    ) -> list[Source]:
        """``found`` (provider results) that pass the last_updated window, with their ``last_updated``:
        the window needs each page's own word, so the pages are read (best first, until ``want``
        pass). The local index's results have no page to read: they are judged by the day the index
        keeps for their document."""
        web: list[Source] = []
        for source in found:
            if source.source != "index":
                web.append(source)
            elif reason := filters.check_updated(source.last_updated):
                report.failures.append(ReadFailure(source.url, "filtered", reason))
        updated: dict[str, str | None] = {}
        if web:
            async with PageReader(self.settings.fetch) as reader:
                urls = [x.url for x in web]
                pages, failures = await reader.read_many(
                    urls, want=want, accept=lambda page: filters.check_updated(page.last_updated)
                )
            report.failures.extend(failures)
            updated = {page.url: page.last_updated for page in pages}
        kept: list[Source] = []
        for x in found:
            if x.source == "index":
                if filters.check_updated(x.last_updated) is None:
                    kept.append(x)
            elif x.url in updated:
                x.last_updated = updated[x.url]
                kept.append(x)
        return kept

    async def _failover(self, query: str, filters: SearchFilters, max_results: int) -> FailoverResult:
        s = self.settings.search
        async with http_client(s.timeout_s) as client:
            providers = build_providers(self.settings, client)
            try:
                return await Failover(providers, self.cache).search(query, filters, max_results)
            finally:
                for p in providers:
                    close = getattr(p, "close", None)
                    if close is not None:
                        close()

    async def aretrieve(
        self,
        query: str,
        filters: SearchFilters | None = None,
        context_size: str | None = None,
        *,
        top_k: int | None = None,
    ) -> tuple[list[Source], SearchReport]:
        s = self.settings.search
        size, preset = context_preset(self.settings, context_size)
        filters = filters or SearchFilters()
        report = SearchReport(
            query=query, context_size=size, top_k=top_k or preset.top_k, context_tokens=preset.context_tokens
        )
        started = time.perf_counter()
        if not query.strip():
            report.error = "the search query is empty"
            return [], report

        found = await self._failover(query, filters, max(s.max_results, 2 * preset.results))
        report.attempts, report.provider, report.cached = found.attempts, found.provider, found.cached
        report.results = len(found.results)
        report.timings["search_s"] = _since(started)
        if found.provider is None:
            report.error = _no_provider(found.attempts)
            return [], report

        candidates = _candidates(found.results, filters, report)
        k = 2 * report.top_k
        # results that carry their text are used as they are (a last_updated window judging the day the
        # index keeps), unless the window needs web pages read: the index's results then step aside
        as_given = all(c.text is not None for c in candidates)
        if filters.has_updated and any(c.provider != "local" for c in candidates):
            as_given = False
            candidates = [c for c in candidates if c.provider != "local"]
        if candidates and as_given:
            sources = self._passages(candidates, filters, report)[:k]
        else:
            # return_images: the provider's own image results (SearXNG's images category), meanwhile
            more = None
            if filters.images is not None and found.provider is not None:
                more = asyncio.create_task(self._provider_images(query, filters, found.provider))
            try:
                sources = await read_and_rank(
                    self.settings, query, candidates, filters, preset, k, report, more
                )
            finally:
                if more is not None:
                    more.cancel()  # a no-op once it was awaited
        report.timings["total_s"] = _since(started)
        if not sources and report.error is None and not report.results:
            report.error = f"{found.provider} found no results for this query"
        elif not sources and report.error is None:
            report.error = (
                f"{found.provider} returned {report.results} results, but none could be used "
                f"({len(report.failures)} filtered or unreadable)"
            )
        return sources, report

    async def _provider_images(self, query: str, filters: SearchFilters, provider: str) -> list[PageImage]:
        """The image results of ``provider``, for a provider that has them (SearXNG); [] when it has
        none or fails (the page images still count). Their pages pass the domain filter."""
        s = self.settings.search
        async with http_client(s.timeout_s) as client:
            chosen = [p for p in build_providers(self.settings, client) if p.name == provider]
            images = getattr(chosen[0], "images", None) if chosen else None
            if images is None:
                return []
            try:
                found: list[PageImage] = await images(query, filters, 2 * IMAGES_PER_SEARCH)
            except ProviderError as exc:
                log.info("provider_images_failed", provider=provider, detail=exc.message)
                return []
        return [im for im in found if filters.check_domain(im.origin_url) is None]

    # --- results that already carry their text (the local index) --------------------------------------

    def _passages(
        self, results: list[SearchResult], filters: SearchFilters, report: SearchReport
    ) -> list[Source]:
        out: list[Source] = []
        for r in results:
            # their pages are not read: a last_updated window judges the day the index keeps
            reason = filters.check_date(r.date, undated=self.settings.search.undated) or (
                filters.check_updated(r.last_updated) if filters.has_updated else None
            )
            if reason is None and filters.languages:
                import py3langid

                reason = filters.check_language(str(py3langid.classify(r.text or "")[0]))
            if reason:
                report.failures.append(ReadFailure(r.url, "filtered", reason))
                continue
            out.append(
                Source(
                    url=r.url,
                    title=r.title,
                    text=r.text or "",
                    score=r.score or 0.0,
                    date=r.date,
                    snippet=r.snippet,
                    source=source_of(r),
                    last_updated=r.last_updated,
                )
            )
        return out


def _candidates(
    results: list[SearchResult], filters: SearchFilters, report: SearchReport
) -> list[SearchResult]:
    """The results the filters let through, each URL once; the others go in the report, with why."""
    candidates: list[SearchResult] = []
    for r in results:
        reason = filters.check_result(r.url, r.date, r.language)
        if reason:
            report.failures.append(ReadFailure(r.url, "filtered", reason))
        elif all(c.url != r.url for c in candidates):
            candidates.append(r)
    return candidates


def source_of(result: SearchResult) -> str:
    """``index`` for the local index's passages (the ``local`` provider), else ``web``."""
    return "index" if result.provider == "local" else "web"


def _no_provider(attempts: list[ProviderAttempt]) -> str:
    tried = [a.detail or a.outcome for a in attempts] or ["search.providers is empty"]
    return "no search provider answered: " + "; ".join(tried)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)
