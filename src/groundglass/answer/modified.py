"""When a fetched page last changed: its own modified-time metadata, else its Last-Modified header.

The page's word comes first because an author's ``dateModified`` survives a copy to another server,
where the header would give the copy's time. Metadata read: ``<meta property="article:modified_time">``,
``og:updated_time``, ``itemprop="dateModified"``, ``<meta name="last-modified">`` and JSON-LD's
``"dateModified"``. Nothing is inferred: a page that says neither has no date here (the publication
date is a different fact and is never copied into this one).

A regular expression over the first bytes of the page rather than a second HTML parse: the tags sit in
``<head>``, and this runs for every page read, after trafilatura has already parsed it once.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from groundglass.answer.search.filters import parse_when

HEAD_BYTES = 64 * 1024  # metadata lives in <head>; JSON-LD sometimes after it, rarely this far in
_META = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(rb"""([a-zA-Z:_-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))""")
_MODIFIED_NAMES = {
    b"article:modified_time",
    b"og:updated_time",
    b"datemodified",
    b"last-modified",
    b"dcterms.modified",
}
_JSON_LD = re.compile(rb'"dateModified"\s*:\s*"([^"]{4,40})"')


def _meta_modified(head: bytes) -> str | None:
    for tag in _META.finditer(head):
        attrs = {
            m.group(1).lower(): m.group(3) or m.group(4) or m.group(5) or b""
            for m in _ATTR.finditer(tag.group(0))
        }
        names = {
            attrs.get(k, b"").strip().lower() for k in (b"property", b"name", b"itemprop", b"http-equiv")
        }
        if names & _MODIFIED_NAMES and attrs.get(b"content"):
            return attrs[b"content"].decode("utf-8", "replace").strip()
    m = _JSON_LD.search(head)
    return m.group(1).decode("utf-8", "replace") if m else None


def last_updated(data: bytes, header: str | None, *, html: bool) -> str | None:
    """The ISO date (YYYY-MM-DD) the page last changed, or None when it does not say."""
    if html:
        when = parse_when(_meta_modified(data[:HEAD_BYTES]))
        if when is not None:
            return when.day
    if header:
        try:
            return parsedate_to_datetime(header).date().isoformat()
        except (TypeError, ValueError, IndexError):
            return None
    return None
