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
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

from groundglass.answer.index.documents import Document, Section
from groundglass.answer.index.extract import SkipFile, html_document, pdf_document, text_document
from groundglass.answer.modified import last_updated
from groundglass.answer.netguard import BlockedAddressError, Policy, blocked_cause, guarded_async_client
from groundglass.answer.search.disk_cache import DiskCache
from groundglass.answer.search.images import PageImage, page_images
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.config import FetchSettings

log = get_logger(__name__)

FailKind = Literal[
    "blocked",
    "bad_url",
    "unreachable",
    "timeout",
    "http_error",
    "redirects",
    "content_type",
    "binary",
    "too_large",
    "unreadable",
    "filtered",
]

HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
PDF_TYPES = {"application/pdf", "application/x-pdf"}
SNIFF_TYPES = {"", "application/octet-stream", "binary/octet-stream"}  # decide by the bytes
REDIRECT_CODES = {301, 302, 303, 307, 308}
_BINARY_MAGIC = (
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"\x7fELF",
    b"MZ",
    b"OggS",
    b"ID3",
    b"fLaC",
    b"RIFF",
    b"\x00\x00\x01\x00",
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HTML_LANG = re.compile(r"""<html[^>]*\blang\s*=\s*["']?([A-Za-z]{2,3})""", re.IGNORECASE)


class ReadError(Exception):
    def __init__(self, kind: FailKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class ReadFailure:
    url: str
    kind: FailKind
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FetchedPage:
    url: str  # as asked
    final_url: str  # after redirects
    status: int
    content_type: str  # media type, lower case, no parameters
    charset: str | None
    data: bytes
    truncated: bool
    redirects: int
    content_language: str | None
    seconds: float
    last_modified: str | None = None  # the Last-Modified header, as sent


@dataclass
class ReadPage:
    url: str
    final_url: str
    document: Document
    truncated: bool
    declared_language: str | None  # <html lang> or Content-Language
    replaced_bytes: int  # invalid bytes turned into U+FFFD while decoding
    seconds: float
    last_updated: str | None = None  # ISO date the page last changed, when it says (modified.py)
    images: list[PageImage] = field(default_factory=list)  # with find_images: what the page shows

    @property
    def title(self) -> str:
        return self.document.title

    @property
    def date(self) -> str | None:
        return self.document.date


# ------------------------------------------------------------------------------------------ decoding


def _media_type(header: str) -> tuple[str, str | None]:
    parts = [p.strip() for p in header.split(";")]
    ctype = parts[0].lower() if parts else ""
    charset = None
    for p in parts[1:]:
        name, _, value = p.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return ctype, charset


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_body(data: bytes, charset: str | None) -> tuple[str, int]:
    """(text, number of invalid bytes replaced): the declared charset (header, then ``<meta>``), else
    UTF-8 (a BOM wins); bytes that do not decode become U+FFFD instead of failing the page."""
    if data.startswith(codecs.BOM_UTF8):
        data, codec = data[len(codecs.BOM_UTF8) :], "utf-8"
    else:
        meta = _META_CHARSET.search(data[:4096])
        in_meta = meta.group(1).decode("ascii", "ignore") if meta else None
        codec = _codec(charset) or _codec(in_meta) or "utf-8"
    try:
        return data.decode(codec), 0
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        return text, text.count("\ufffd") - data.decode(codec, errors="ignore").count("\ufffd")


def looks_binary(head: bytes) -> bool:
    """Bytes that cannot be a text page: NULs, or the magic number of a common binary format."""
    return b"\x00" in head[:8192] or head.startswith(_BINARY_MAGIC)


# reads the final response of a fetch: (url as asked, final url, response, redirects) -> page
_BodyReader = Callable[[str, str, httpx.Response, int], Awaitable[FetchedPage]]


# -------------------------------------------------------------------------------------- politeness


class _HostGate:
    """At most ``limit`` requests in flight to one host, starts at least ``delay`` seconds apart."""

    def __init__(self, limit: int, delay: float) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.delay = delay
        self.lock = asyncio.Lock()
        self.next_start = 0.0

    async def __aenter__(self) -> None:
        await self.slots.acquire()
        try:
            async with self.lock:
                wait = self.next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.next_start = time.monotonic() + self.delay
        except BaseException:
            self.slots.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.slots.release()


def _host_key(url: str) -> str:
    p = urlsplit(url)
    return f"{(p.hostname or '').lower()}:{p.port or (443 if p.scheme == 'https' else 80)}"


# ---------------------------------------------------------------------------------------- extraction cache

EXTRACT_CACHE_FILE = "page-text.sqlite3"
EXTRACT_CACHE_ROWS = 5_000  # pages (a long manual page is ~50-200 KB of text)


def _extractor_id() -> bytes:
    """Changes whenever the extraction could give another result: its code or trafilatura's version."""
    global _EXTRACTOR_ID
    if _EXTRACTOR_ID is None:
        import trafilatura

        from groundglass.answer.index import extract

        h = hashlib.blake2b(digest_size=16)
        for source in (extract.__file__ or "", __file__):
            h.update(Path(source).read_bytes())
        h.update(trafilatura.__version__.encode())
        _EXTRACTOR_ID = h.digest()
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


# ---------------------------------------------------------------------------------------- the reader


class PageReader:
    """Fetch and extract pages. Use inside one event loop: ``async with PageReader(s) as reader:``."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        detect_language: bool = False,
        extract_cache: DiskCache | None = None,
        find_images: bool = False,
    ) -> None:
        self.settings = settings
        self.find_images = find_images
        self.extract_cache = extract_cache
        self.detect_language = detect_language
        self.policy = Policy(settings.allow_private, settings.allowed_networks)
        accept = "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.1"
        self.client = guarded_async_client(
            self.policy,
            timeout_s=settings.timeout_s,
            user_agent=settings.user_agent,
            headers={"Accept": accept},
        )
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, _HostGate] = {}

    async def __aenter__(self) -> PageReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    def _gate(self, url: str) -> _HostGate:
        key = _host_key(url)
        if key not in self._hosts:
            self._hosts[key] = _HostGate(self.settings.per_host_concurrency, self.settings.per_host_delay_s)
        return self._hosts[key]

    # --- fetch -------------------------------------------------------------------------------------

    async def fetch(self, url: str, *, body: _BodyReader | None = None) -> FetchedPage:
        """The page's bytes, within every limit; raises :class:`ReadError`. ``body`` reads the final
        response instead of the page rules (used by :meth:`fetch_binary`)."""
        _check_scheme(url)
        started = time.perf_counter()
        async with self._slots, self._gate(url):
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    page = await self._fetch(url, body or self._body)
            except TimeoutError as exc:
                limit = self.settings.timeout_s
                raise ReadError("timeout", f"no complete answer within {limit:g} s") from exc
            except ReadError:
                raise
            except BlockedAddressError as exc:
                raise ReadError("blocked", exc.message) from exc
            except httpx.TimeoutException as exc:
                raise ReadError("timeout", f"timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                blocked = blocked_cause(exc)
                if blocked is not None:
                    raise ReadError("blocked", blocked.message) from exc
                raise ReadError("unreachable", f"{type(exc).__name__}: {exc}") from exc
            except GroundglassError as exc:  # the guard could not resolve the host
                raise ReadError("unreachable", exc.message) from exc
        page.seconds = round(time.perf_counter() - started, 4)
        return page

    async def _fetch(self, url: str, body: _BodyReader) -> FetchedPage:
        s = self.settings
        seen = {url}
        current = url
        for hop in range(s.max_redirects + 1):
            request = self.client.build_request("GET", current)
            response = await self.client.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code in REDIRECT_CODES and "location" in response.headers:
                    target = urldefrag(urljoin(current, response.headers["location"]))[0]
                    if target in seen:
                        raise ReadError("redirects", f"redirect loop ({current} -> {target})")
                    if hop == s.max_redirects:
                        raise ReadError("redirects", f"more than {s.max_redirects} redirects")
                    _check_scheme(target)
                    seen.add(target)
                    current = target
                    continue
                return await body(url, current, response, hop)
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")

    async def _body(self, url: str, final: str, response: httpx.Response, redirects: int) -> FetchedPage:
        s = self.settings
        if response.status_code != 200:
            raise ReadError("http_error", f"HTTP {response.status_code}")
        ctype, charset = _media_type(response.headers.get("content-type", ""))
        if ctype not in HTML_TYPES | TEXT_TYPES | PDF_TYPES | SNIFF_TYPES:
            raise ReadError("content_type", f"unsupported content type {ctype}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > s.max_bytes and ctype in PDF_TYPES:
            raise ReadError(
                "too_large", f"PDF of {int(declared):,} bytes, over the {s.max_bytes:,}-byte limit"
            )
        buf = bytearray()
        truncated = False
        checked = False
        async for piece in response.aiter_bytes():  # decoded: the limit counts what a gzip body unpacks to
            buf += piece
            if not checked and len(buf) >= 512:
                self._check_bytes(ctype, bytes(buf[:8192]))
                checked = True
            if len(buf) > s.max_bytes:
                truncated = True
                del buf[s.max_bytes :]
                break
        data = bytes(buf)
        if not checked:
            self._check_bytes(ctype, data[:8192])
        if ctype in SNIFF_TYPES:
            ctype = "application/pdf" if data.startswith(b"%PDF-") else ""
        if truncated and (ctype in PDF_TYPES or data.startswith(b"%PDF-")):
            raise ReadError("too_large", f"PDF over the {s.max_bytes:,}-byte limit")
        return FetchedPage(
            url=url,
            final_url=final,
            status=response.status_code,
            content_type=ctype,
            charset=charset,
            data=data,
            truncated=truncated,
            redirects=redirects,
            content_language=response.headers.get("content-language"),
            seconds=0.0,
            last_modified=response.headers.get("last-modified"),
        )

    async def fetch_binary(self, url: str, media_types: Collection[str], max_bytes: int) -> FetchedPage:
        """The whole body of a non-page resource (an image), with the page reader's guard, politeness,
        redirects and timeout. Only ``media_types`` (lower case) are read; an untyped or
        ``application/octet-stream`` body comes back for the caller to judge by its bytes; any other type
        is refused before the body is downloaded. A body over ``max_bytes`` is refused (``too_large``),
        never cut. Raises :class:`ReadError`."""

        async def body(asked: str, final: str, response: httpx.Response, redirects: int) -> FetchedPage:
            if response.status_code != 200:
                raise ReadError("http_error", f"HTTP {response.status_code}")
            ctype, charset = _media_type(response.headers.get("content-type", ""))
            if ctype not in media_types and ctype not in SNIFF_TYPES:
                raise ReadError(
                    "content_type", f"content type {ctype}, expected one of {', '.join(sorted(media_types))}"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ReadError("too_large", f"{int(declared):,} bytes, over the {max_bytes:,}-byte limit")
            buf = bytearray()
            async for piece in response.aiter_bytes():
                buf += piece
                if len(buf) > max_bytes:
                    raise ReadError("too_large", f"more than {max_bytes:,} bytes, over the limit")
            return FetchedPage(
                url=asked,
                final_url=final,
                status=response.status_code,
                content_type=ctype,
                charset=charset,
                data=bytes(buf),
                truncated=False,
                redirects=redirects,
                content_language=response.headers.get("content-language"),
                seconds=0.0,
            )

        return await self.fetch(url, body=body)

    @staticmethod
    def _check_bytes(ctype: str, head: bytes) -> None:
        if ctype in PDF_TYPES or head.startswith(b"%PDF-"):
            if ctype in HTML_TYPES | TEXT_TYPES:
                raise ReadError("binary", f"a PDF file served as {ctype}")
            return
        if looks_binary(head):
            shown = ctype or "no content type"
            raise ReadError("binary", f"binary content served as {shown}")

    # --- read: fetch + extract -------------------------------------------------------------------------

    async def read(self, url: str) -> ReadPage:
        page = await self.fetch(url)
        try:
            read = await asyncio.to_thread(self._extract_cached, page)
        except SkipFile as exc:
            raise ReadError("unreadable", str(exc)) from exc
        html = read.document.kind == "html" or page.content_type in HTML_TYPES
        read.last_updated = last_updated(page.data, page.last_modified, html=html)
        if self.find_images and html:
            read.images = await asyncio.to_thread(page_images, page.data, page.final_url, read.title)
        return read

    def _extract_cached(self, page: FetchedPage) -> ReadPage:
        if self.extract_cache is None:
            return self._extract(page)
        started = time.perf_counter()
        key = _extract_key(page)
        stored = self.extract_cache.get([key]).get(key)
        if stored is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return _read_page_from(json.loads(stored), page, time.perf_counter() - started)
        read = self._extract(page)
        self.extract_cache.put({key: json.dumps(_read_page_json(read)).encode()})
        return read

    def _extract(self, page: FetchedPage) -> ReadPage:
        started = time.perf_counter()
        fallback = _title_from_url(page.final_url)
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

    async def read_many(
        self,
        urls: Sequence[str],
        *,
        want: int | None = None,
        accept: Callable[[ReadPage], str | None] | None = None,
    ) -> tuple[list[ReadPage], list[ReadFailure]]:
        """Read ``urls`` (best first) until ``want`` pages are read and accepted (all when None).

        ``accept`` returns None to keep a page or the reason to drop it (a filter). Pages come back
        in the order of ``urls``; failures say why each URL was not used.
        """
        want = len(urls) if want is None else want
        pages: dict[int, ReadPage] = {}
        failures: dict[int, ReadFailure] = {}
        todo = iter(list(enumerate(urls)))
        in_flight = 0
        slot_freed = asyncio.Event()

        async def worker() -> None:
            nonlocal in_flight
            while True:
                # start another URL only while the pages read + being read could still fall short
                while len(pages) + in_flight >= want:
                    if len(pages) >= want:
                        return
                    slot_freed.clear()
                    await slot_freed.wait()
                item = next(todo, None)
                if item is None:
                    return
                i, url = item
                in_flight += 1
                try:
                    page = await self.read(url)
                    reason = accept(page) if accept else None
                    if reason:
                        failures[i] = ReadFailure(url, "filtered", reason)
                    else:
                        pages[i] = page
                except ReadError as exc:
                    failures[i] = ReadFailure(url, exc.kind, exc.reason)
                except Exception as exc:  # a bug: report the URL, keep the others going
                    log.exception("reader_crashed", url=url)
                    failures[i] = ReadFailure(
                        url, "unreadable", f"internal error: {type(exc).__name__}: {exc}"
                    )
                finally:
                    in_flight -= 1
                    slot_freed.set()

        workers = max(1, min(self.settings.concurrency, want, len(urls)))
        await asyncio.gather(*(worker() for _ in range(workers)))
        kept = [pages[i] for i in sorted(pages)][:want]
        return kept, [failures[i] for i in sorted(failures)]


def detect_language(page: ReadPage) -> str | None:
    """The page's language (ISO 639-1): py3langid on its text when there is enough of it, else what
    the page declares (``<html lang>``, Content-Language)."""
    text = page.document.text[:3000]
    if len(text) >= 200:
        import py3langid

        code, _ = py3langid.classify(text)
        return str(code)
    return page.declared_language


def _check_scheme(url: str) -> None:
    p = urlsplit(url)
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ReadError("bad_url", f"not an http(s) URL: {url[:200]}")


def _title_from_url(url: str) -> str:
    p = urlsplit(url)
    last = p.path.rstrip("/").rsplit("/", 1)[-1]
    return last or p.hostname or url
