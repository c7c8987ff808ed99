"""Reading the pages of a web search's results and ranking their passages: the pages the filters
let through (domain, date, last_updated, language, judged on each page as it is read) until enough
are read, their documents dated by the provider where a page says no date, then the best passages of
all of them (:func:`groundglass.answer.search.pages.rank_pages`). With ``return_images`` the pages'
images (and the provider's image results) are chosen while the reader is open. Everything read,
dropped or timed goes into the :class:`~.report.SearchReport`.

A question about a setting or a callable by its name (``random_page_cost``, ``textwrap.wrap()``) is
answered by the manual's entry for it: its term line (``- random_page_cost (floating point):``) and
description. A search engine may rank first the pages that only mention it: on PostgreSQL's manual the
entry of ``random_page_cost`` came 4th (after the tablespace commands that list it), that of
``maintenance_work_mem`` 8th, and the three pages read held no default to find. When none of the pages
read has an entry for a name the question asks about that gives its type or signature (a tip's list
may name it bare), the next results are read too (up to
``MORE_PAGES_FACTOR`` times as many again) and those that define it are kept; the others are left out,
so a question that no entry answers costs reading time, not a longer context.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from groundglass.answer.definitions import is_term
from groundglass.answer.querytext import CAMEL_CASE, Verbatim
from groundglass.answer.reader import (
    EXTRACT_CACHE_FILE,
    EXTRACT_CACHE_ROWS,
    PageReader,
    ReadFailure,
    ReadPage,
    detect_language,
)
from groundglass.answer.search.disk_cache import DiskCache
from groundglass.answer.search.filters import SearchFilters, parse_when
from groundglass.answer.search.images import PageImage, select_images
from groundglass.answer.search.report import SearchReport
from groundglass.answer.search.result_order import reading_order
from groundglass.answer.types import Source
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.answer.index.documents import Document
    from groundglass.answer.search.base import SearchResult
    from groundglass.answer.search.images import ImageFilters
    from groundglass.config import SearchContextSize, Settings

log = get_logger(__name__)

IMAGES_PER_SEARCH = 10  # return_images: the best images of the pages one search read
# A name that has an entry of its own in a manual: a setting or parameter (snake_case), a call, or a
# CamelCase directive or field (KeepAliveTimeout).
_ENTRY_NAME = re.compile(rf"^\w*_\w+$|\(\)$|^{CAMEL_CASE}$")
MORE_PAGES_FACTOR = 2  # results tried further down, per page the preset reads


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
        if s.rerank_results and results:
            # the first result keeps its place: it is read while the others are put in order
            reader.read_early(results[0].url)
            results = await asyncio.to_thread(reading_order, query, results)
        pages, failures = await reader.read_many(
            [r.url for r in results],
            want=preset.results,
            accept=page_filter(filters, provider_dates, s.undated),
        )
        accept = page_filter(filters, provider_dates, s.undated)
        pages += await _entries_further_down(
            reader, query, results, (pages, failures), accept, preset, report
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


async def _entries_further_down(
    reader: PageReader,
    query: str,
    results: list[SearchResult],
    read: tuple[list[ReadPage], list[ReadFailure]],
    accept: Callable[[ReadPage], str | None],
    preset: SearchContextSize,
    report: SearchReport,
) -> list[ReadPage]:
    """The pages further down ``results`` (after those ``read`` tried) that define a name ``query``
    asks about, when none of the pages read does (module docstring); [] when the question names none
    or a page read defines it."""
    pages, failures = read
    verbatim = Verbatim.of(query)
    if not any(_ENTRY_NAME.search(t) for t in verbatim.terms):
        return []
    if any(_full_entry(verbatim, page.document) for page in pages):
        return []
    tried = {page.url for page in pages} | {f.url for f in failures}
    rest = [r.url for r in results if r.url not in tried][: MORE_PAGES_FACTOR * preset.results]
    if not rest:
        return []
    started = time.perf_counter()

    def defines(page: ReadPage) -> str | None:
        found = verbatim.definitions(page.document.text) or _headed(verbatim, page.document)
        return accept(page) or (None if found else "defines no name asked")

    more, _ = await reader.read_many(rest, want=preset.results, accept=defines)
    report.timings["read_more_s"] = _since(started)
    log.info("read_further", query=query[:120], tried=len(rest), kept=[p.url for p in more])
    return more


def _full_entry(verbatim: Verbatim, document: Document) -> bool:
    """Whether ``document`` has an entry for a name of ``verbatim``: a term line that gives its type or
    signature (``- maintenance_work_mem (integer):``), as a manual's own entry for it does (a tip's list
    names it bare: ``- maintenance_work_mem:`` in GIN Tips, ranked first for it), or a section headed by
    the name (Apache httpd's "KeepAliveTimeout Directive")."""
    lines = document.text.splitlines()
    return any("(" in line and verbatim.definitions(line) for line in lines if is_term(line)) or _headed(
        verbatim, document
    )


def _headed(verbatim: Verbatim, document: Document) -> bool:
    """Whether a section of ``document`` is headed by a name ``verbatim`` holds, as its first word."""
    names = {t.removesuffix("()").lower() for t in verbatim.terms if _ENTRY_NAME.search(t)}
    for section in document.sections:
        first = section.heading.split(maxsplit=1)[:1]
        if first and first[0].strip("`*").split("(")[0].lower() in names:
            return True
    return False


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
