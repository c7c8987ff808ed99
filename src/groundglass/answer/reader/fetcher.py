"""Fetching pages within every limit, and reading them: :class:`PageReader`.

Fetching (httpx, asyncio): bounded concurrency and per-host politeness (in flight and start spacing
per host), a time limit per page from connect to last byte, a byte limit on the streamed body,
redirects followed by hand (every hop through :mod:`groundglass.answer.netguard`), and the content
checks of :mod:`.content` before and while the body arrives. Reading is fetching plus
:mod:`.extraction` in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx

from groundglass.answer.index.extract import SkipFile
from groundglass.answer.modified import last_updated
from groundglass.answer.netguard import BlockedAddressError, Policy, blocked_cause, guarded_async_client
from groundglass.answer.reader.content import (
    HTML_TYPES,
    PDF_TYPES,
    SNIFF_TYPES,
    TEXT_TYPES,
    check_bytes,
    media_type,
)
from groundglass.answer.reader.extraction import extract_cached
from groundglass.answer.reader.pages import FetchedPage, ReadError, ReadFailure, ReadPage
from groundglass.answer.search.disk_cache import DiskCache
from groundglass.answer.search.images import page_images
from groundglass.errors import GroundglassError
from groundglass.log import get_logger

if TYPE_CHECKING:
    from groundglass.config import FetchSettings

log = get_logger(__name__)

REDIRECT_CODES = {301, 302, 303, 307, 308}


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
        self._early: dict[str, asyncio.Task[ReadPage]] = {}  # reads started before they were asked for

    async def __aenter__(self) -> PageReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in self._early.values():  # started, never asked for
            task.cancel()
        await asyncio.gather(*self._early.values(), return_exceptions=True)
        self._early.clear()
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
        ctype, charset = media_type(response.headers.get("content-type", ""))
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
                check_bytes(ctype, bytes(buf[:8192]))
                checked = True
            if len(buf) > s.max_bytes:
                truncated = True
                del buf[s.max_bytes :]
                break
        data = bytes(buf)
        if not checked:
            check_bytes(ctype, data[:8192])
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
            ctype, charset = media_type(response.headers.get("content-type", ""))
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

    # --- read: fetch + extract -------------------------------------------------------------------------

    def read_early(self, url: str) -> None:
        """Start reading ``url`` now, for a :meth:`read` of it to come (which then waits for this one):
        a page sure to be read is fetched and extracted while the caller still decides on the others."""
        if url not in self._early:
            self._early[url] = asyncio.create_task(self._read(url))

    async def read(self, url: str) -> ReadPage:
        early = self._early.pop(url, None)
        return await (early if early is not None else self._read(url))

    async def _read(self, url: str) -> ReadPage:
        page = await self.fetch(url)
        try:
            read = await asyncio.to_thread(extract_cached, page, self.extract_cache)
        except SkipFile as exc:
            raise ReadError("unreadable", str(exc)) from exc
        html = read.document.kind == "html" or page.content_type in HTML_TYPES
        read.last_updated = last_updated(page.data, page.last_modified, html=html)
        if self.find_images and html:
            read.images = await asyncio.to_thread(page_images, page.data, page.final_url, read.title)
        return read

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


def _check_scheme(url: str) -> None:
    p = urlsplit(url)
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ReadError("bad_url", f"not an http(s) URL: {url[:200]}")
