"""Reading the pages of a web search's results and ranking their passages: the pages the filters
let through (domain, date, last_updated, language, judged on each page as it is read) until enough
are read, their documents dated by the provider where a page says no date, then the best passages of
all of them (:func:`groundglass.answer.search.pages.rank_pages`). With ``return_images`` the pages'
images (and the provider's image results) are chosen while the reader is open. Everything read,
dropped or timed goes into the :class:`~.report.SearchReport`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from groundglass.answer.reader import (
    EXTRACT_CACHE_FILE,
    EXTRACT_CACHE_ROWS,
    PageReader,
    ReadPage,
    detect_language,
)
from groundglass.answer.search.disk_cache import DiskCache
from groundglass.answer.search.filters import SearchFilters, parse_when
from groundglass.answer.search.images import PageImage, select_images
from groundglass.answer.search.report import SearchReport
from groundglass.answer.types import Source

if TYPE_CHECKING:
    from groundglass.answer.index.documents import Document
    from groundglass.answer.search.base import SearchResult
    from groundglass.answer.search.images import ImageFilters
    from groundglass.config import SearchContextSize, Settings

IMAGES_PER_SEARCH = 10  # return_images: the best images of the pages one search read


async def read_and_rank(
    settings: Settings,
    query: str,
    results: list[SearchResult],
    filters: SearchFilters,
    preset: SearchContextSize,
    k: int,
    report: SearchReport,
    more_images: asyncio.Task[list[PageImage]] | None = None,
) -> list[Source]:
    """The ``k`` best passages of the pages of ``results`` that pass ``filters`` (``preset.results``
    pages read at most); [] with ``report.error`` set when no page could be read."""
    s = settings.search
    started = time.perf_counter()
    provider_dates = {r.url: r.date for r in results}
    if filters.languages:
        await asyncio.to_thread(_load_language_model)
    texts = DiskCache(settings.cache_dir / EXTRACT_CACHE_FILE, EXTRACT_CACHE_ROWS)
    languages = bool(filters.languages)
    async with PageReader(
        settings.fetch,
        detect_language=languages,
        extract_cache=texts,
        find_images=filters.images is not None,
    ) as reader:
        pages, failures = await reader.read_many(
            [r.url for r in results],
            want=preset.results,
            accept=page_filter(filters, provider_dates, s.undated),
        )
        if filters.images is not None:
            await _choose_images(reader, pages, more_images, filters.images, query, report)
    report.failures.extend(failures)
    report.timings["read_s"] = _since(started)
    docs = _documents(pages, provider_dates, report)
    updated = {page.document.uri: page.last_updated for page in pages}
    if not docs:
        if results:
            report.error = _unread(len(results), report)
        return []
    from groundglass.answer.search.pages import rank_pages

    started = time.perf_counter()
    sources = await asyncio.to_thread(rank_pages, docs, query, settings, k, s.max_chunks_per_page)
    for source in sources:
        source.source, source.last_updated = "web", updated.get(source.url)
    report.timings["rank_s"] = _since(started)
    return sources


def page_filter(
    filters: SearchFilters, provider_dates: dict[str, str | None], undated: str
) -> Callable[[ReadPage], str | None]:
    """What the reader asks of each page it read: None to keep it, else why it is dropped (its final
    URL's domain, its date or the provider's, its last_updated day, its language)."""

    def accept(page: ReadPage) -> str | None:
        reason = filters.check_domain(page.final_url)
        if reason:
            return reason
        when = page.date or provider_dates.get(page.url)
        reason = filters.check_date(when, undated=undated) or filters.check_updated(page.last_updated)
        if reason:
            return reason
        if filters.languages:
            return filters.check_language(detect_language(page))
        return None

    return accept


def _unread(n_results: int, report: SearchReport) -> str:
    """The error for results none of whose pages could be read: each reason once, and the fix for
    pages at private addresses."""
    reasons = list(dict.fromkeys(f.reason for f in report.failures))  # each reason once
    hint = ""
    if any(f.kind == "blocked" for f in report.failures):
        hint = "; to read pages at private addresses you trust, set fetch.allowed_networks"
    shown = "; ".join(reasons[:3])
    return f"none of the {n_results} results could be read ({shown}){hint}"


async def _choose_images(
    reader: PageReader,
    pages: list[ReadPage],
    more_images: asyncio.Task[list[PageImage]] | None,
    wanted: ImageFilters,
    query: str,
    report: SearchReport,
) -> None:
    """return_images: the best images of the pages read (and of the provider's image search)."""
    looked = time.perf_counter()
    found = [im for page in pages for im in page.images]
    found += await more_images if more_images is not None else []
    chosen = await select_images(reader, found, wanted, query, IMAGES_PER_SEARCH)
    report.images = [im.public() for im in chosen]
    report.timings["images_s"] = _since(looked)


def _documents(
    pages: list[ReadPage], provider_dates: dict[str, str | None], report: SearchReport
) -> list[Document]:
    """The pages' documents, dated by the provider where the page says no date; each page goes in the
    report."""
    docs = []
    for page in pages:
        doc = page.document
        if not doc.date:
            when = parse_when(provider_dates.get(page.url))
            doc.date = when.day if when else None
        docs.append(doc)
        report.pages.append(
            {
                "url": page.url,
                "final_url": page.final_url,
                "title": doc.title,
                "date": doc.date,
                "last_updated": page.last_updated,
                "truncated": page.truncated,
                "replaced_bytes": page.replaced_bytes,
                "seconds": page.seconds,
            }
        )
    return docs


def _load_language_model() -> None:
    import py3langid

    py3langid.classify("warm up")


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)
