"""A fetched page's bytes made text: extraction, its cache on disk, and the page's language.

Extraction reuses the local index's own code (:mod:`groundglass.answer.index.extract`: trafilatura
for HTML main text, title and date; pypdf for PDF). What it made of a page is kept on disk, keyed by
a hash of the bytes, the URL, the headers that matter and the extraction code itself, so a page
fetched again unchanged is not parsed again: trafilatura takes a second or more on a long manual page.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from groundglass.answer.index.documents import Document, Section
from groundglass.answer.index.extract import SkipFile, html_document, pdf_document, text_document
from groundglass.answer.reader.content import HTML_TYPES, PDF_TYPES, decode_body
from groundglass.answer.reader.pages import FetchedPage, ReadPage
from groundglass.answer.search.disk_cache import DiskCache, code_digest

_HTML_LANG = re.compile(r"""<html[^>]*\blang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)

EXTRACT_CACHE_FILE = "page-text.sqlite3"
EXTRACT_CACHE_ROWS = 5_000  # pages (a long manual page is ~50-200 KB of text)


def _extractor_id() -> bytes:
    """Changes whenever the extraction could give another result: its code or trafilatura's version."""
    global _EXTRACTOR_ID
    if _EXTRACTOR_ID is None:
        # trafilatura's version from its metadata, not its import: 0.3 s that a page found in the cache
        # would pay for nothing
        from importlib.metadata import version

        from groundglass.answer import definitions
        from groundglass.answer.index import extract as index_extract
        from groundglass.answer.index import html_headings, html_manpages, html_tables, markdown_fences
        from groundglass.answer.reader import content

        modules = (
            Path(__file__),
            index_extract,
            html_headings,
            html_manpages,
            html_tables,
            markdown_fences,
            definitions,
            content,
        )
        _EXTRACTOR_ID = code_digest(modules, version("trafilatura").encode())
    return _EXTRACTOR_ID


_EXTRACTOR_ID: bytes | None = None


def _extract_key(page: FetchedPage) -> bytes:
    h = hashlib.blake2b(_extractor_id(), digest_size=16)
    for part in (page.final_url, page.content_type, page.charset or "", page.content_language or ""):
        h.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    h.update(page.data)
    return h.digest()


def _read_page_json(read: ReadPage) -> dict[str, Any]:
    d = read.document
    return {
        "uri": d.uri,
        "title": d.title,
        "date": d.date,
        "kind": d.kind,
        "sections": [[s.heading, s.text] for s in d.sections],
        "declared_language": read.declared_language,
        "replaced_bytes": read.replaced_bytes,
    }


def _read_page_from(data: dict[str, Any], page: FetchedPage, seconds: float) -> ReadPage:
    doc = Document(
        uri=data["uri"],
        title=data["title"],
        date=data["date"],
        kind=data["kind"],
        sections=[Section(h, t) for h, t in data["sections"]],
    )
    return ReadPage(
        url=page.url,
        final_url=page.final_url,
        document=doc,
        truncated=page.truncated,
        declared_language=data["declared_language"],
        replaced_bytes=int(data["replaced_bytes"]),
        seconds=round(page.seconds + seconds, 4),
    )


def extract_cached(page: FetchedPage, cache: DiskCache | None) -> ReadPage:
    """:func:`extract`, looked up in ``cache`` first and stored there after."""
    if cache is None:
        return extract(page)
    started = time.perf_counter()
    key = _extract_key(page)
    stored = cache.get([key]).get(key)
    if stored is not None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return _read_page_from(json.loads(stored), page, time.perf_counter() - started)
    read = extract(page)
    cache.put({key: json.dumps(_read_page_json(read)).encode()})
    return read


def extract(page: FetchedPage) -> ReadPage:
    """The text of a fetched page (trafilatura for HTML, pypdf for PDF); raises :class:`SkipFile` when
    there is none."""
    started = time.perf_counter()
    fallback = title_from_url(page.final_url)
    replaced = 0
    declared = (page.content_language or "").split(",")[0].strip() or None
    if page.content_type in PDF_TYPES:
        doc = pdf_document(page.data, page.final_url, fallback)
    else:
        text, replaced = decode_body(page.data, page.charset)
        head = text[:1024].lstrip().lower()
        is_html = page.content_type in HTML_TYPES or (
            not page.content_type and head.startswith(("<!doctype html", "<html"))
        )
        if is_html:
            m = _HTML_LANG.search(text[:4096])
            declared = m.group(1).lower() if m else declared
            doc = html_document(text, page.final_url, fallback)
        else:
            doc = text_document(text, page.final_url, fallback)
    if not doc.text.strip():
        raise SkipFile("no text found on the page")
    return ReadPage(
        url=page.url,
        final_url=page.final_url,
        document=doc,
        truncated=page.truncated,
        declared_language=declared,
        replaced_bytes=replaced,
        seconds=round(page.seconds + time.perf_counter() - started, 4),
    )


def detect_language(page: ReadPage) -> str | None:
    """The page's language (ISO 639-1): py3langid on its text when there is enough of it, else what
    the page declares (``<html lang>``, Content-Language)."""
    text = page.document.text[:3000]
    if len(text) >= 200:
        import py3langid

        code, _ = py3langid.classify(text)
        return str(code)
    return page.declared_language


def title_from_url(url: str) -> str:
    p = urlsplit(url)
    last = p.path.rstrip("/").rsplit("/", 1)[-1]
    return last or p.hostname or url
