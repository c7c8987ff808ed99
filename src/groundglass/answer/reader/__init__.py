"""The page reader: fetch web pages asynchronously and extract their text (HTML, PDF, plain text).

Fetching (httpx, asyncio):
- bounded concurrency (``search.reader.concurrency``) and per-host politeness: at most
  ``per_host_concurrency`` requests in flight to one host, request starts to one host at least
  ``per_host_delay_s`` apart;
- a time limit per page covering connect to last byte (``timeout_s``), so a server that trickles
  bytes is cut off too;
- a byte limit (``max_bytes``): the body is streamed and reading stops there; HTML and text are used
  up to the limit (marked ``truncated``), a cut PDF is unreadable and refused;
- redirects followed by hand up to ``max_redirects``, with loops named as such; every hop's
  connection goes through :mod:`groundglass.answer.netguard`, which resolves the host and refuses
  private, loopback, link-local and metadata addresses unless ``allow_private`` /
  ``allowed_networks`` say otherwise;
- content-type checks: HTML, XHTML, plain text, Markdown and PDF are read; anything else is refused
  before its body is downloaded; binary bytes served under a text type are refused as soon as they
  show.

Extraction reuses the local index's own code (:mod:`groundglass.answer.index.extract`: trafilatura
for HTML main text, title and date; pypdf for PDF) in a worker thread. Text is decoded by the
declared charset (header, then ``<meta>``), else UTF-8; invalid bytes become U+FFFD instead of
failing the page.

What extraction made of a page's bytes is kept on disk (``extract_cache``, keyed by a hash of the
bytes, the URL, the headers that matter and the extraction code itself), so a page fetched again
unchanged, by this process or a later one, is not parsed again: trafilatura takes a second or more on
a long manual page.

Every failure is a :class:`ReadFailure` with a kind and a reason; nothing raises out of
:meth:`PageReader.read_many`.

The package, one job a module: :mod:`.pages` (what a read gives back, and its failures),
:mod:`.content` (content types, charsets, binary sniffing), :mod:`.extraction` (bytes to text, and
the cache of it), :mod:`.fetcher` (:class:`PageReader`: fetching within the limits, and reading).
"""

from __future__ import annotations

from groundglass.answer.reader.content import decode_body, looks_binary
from groundglass.answer.reader.extraction import EXTRACT_CACHE_FILE, EXTRACT_CACHE_ROWS, detect_language
from groundglass.answer.reader.fetcher import PageReader
from groundglass.answer.reader.pages import FailKind, FetchedPage, ReadError, ReadFailure, ReadPage

__all__ = [
    "EXTRACT_CACHE_FILE",
    "EXTRACT_CACHE_ROWS",
    "FailKind",
    "FetchedPage",
    "PageReader",
    "ReadError",
    "ReadFailure",
    "ReadPage",
    "decode_body",
    "detect_language",
    "looks_binary",
]
