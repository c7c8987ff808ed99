"""Website ingestion: breadth-first from a start URL, same host only, polite and bounded.

- pages: the start URL, the pages listed in its sitemap(s) (robots.txt ``Sitemap:`` lines, else
  ``/sitemap.xml`` when present) and the links found on fetched HTML pages, up to
  ``crawl.max_depth`` links away and ``crawl.max_pages`` fetched pages (each fetched as ``[fetch]``
  says: ``crawl_timeout_s``, ``crawl_max_bytes``, ``user_agent``, the address policy);
- robots.txt is obeyed (``urllib.robotparser``; fetched through the guarded client, since
  robotparser's own ``read`` would bypass the SSRF guard), including ``Crawl-delay`` (capped at 10 s);
- every request goes through :mod:`groundglass.answer.netguard` (private addresses refused unless
  allowed, redirects re-checked), with timeouts, a byte limit and a content-type check.

Yields a :class:`Document` per page that could be read and a :class:`Skipped` (with the reason) for
each one that could not. A page whose bytes equal an earlier page's (``/`` and ``/index.html``) is
ingested once.
"""

from __future__ import annotations

import hashlib
import time
import urllib.robotparser
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import httpx

from groundglass.answer.index.documents import Document, Skipped
from groundglass.answer.index.extract import SkipFile, extract_bytes, http_date_day
from groundglass.answer.netguard import BlockedAddressError, Policy, blocked_cause, check_url, guarded_client
from groundglass.errors import GroundglassError
from groundglass.log import get_logger
from groundglass.threads import HTML_LOCK

if TYPE_CHECKING:
    from groundglass.config import CrawlSettings, FetchSettings

log = get_logger(__name__)

ACCEPTED_TYPES = {
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "text/x-markdown",
    "application/pdf",
}
MAX_SITEMAP_URLS = 10_000
MAX_CRAWL_DELAY_S = 10.0
MAX_REDIRECTS = 5


class FetchSkip(Exception):
    """This URL is not ingested; ``str(exc)`` says why (``status``: the HTTP status, if any)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Page:
    url: str  # after redirects
    data: bytes
    content_type: str
    last_modified: str | None = None  # the Last-Modified header, as sent


def normalize(url: str) -> str:
    """Fragment dropped, scheme and host lower-cased, empty path -> '/'."""
    url, _ = urldefrag(url.strip())
    p = urlsplit(url)
    return urlunsplit((p.scheme.lower(), p.netloc.lower(), p.path or "/", p.query, ""))


def _site(url: str) -> tuple[str, int]:
    p = urlsplit(url)
    return (p.hostname or "").lower(), p.port or (443 if p.scheme == "https" else 80)


def same_host(a: str, b: str) -> bool:
    """Same host name (http and https of one host count as the same site)."""
    return (urlsplit(a).hostname or "").lower() == (urlsplit(b).hostname or "").lower()


class Crawler:
    def __init__(self, fetch: FetchSettings) -> None:
        self.settings = fetch
        self.policy = Policy.from_settings(fetch)
        # redirects are followed by hand: each hop must stay on the site and be allowed by robots.txt
        self.client = guarded_client(
            self.policy, timeout_s=fetch.crawl_timeout_s, user_agent=fetch.user_agent, follow_redirects=False
        )
        self.robots: dict[tuple[str, int], urllib.robotparser.RobotFileParser] = {}

    def close(self) -> None:
        self.client.close()

    # --------------------------------------------------------------------------------------- fetch
    def fetch(self, url: str, *, accept: set[str] | None = None) -> Page:
        """GET ``url`` (following up to 5 same-site redirects); :class:`FetchSkip` says why not."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            location = self._fetch_once(current, accept)
            if isinstance(location, Page):
                return location
            if not same_host(location, url):
                raise FetchSkip(f"redirected to another host ({location})")
            if not self.allowed(location):
                raise FetchSkip(f"redirected to {location}, which robots.txt disallows")
            current = location
        raise FetchSkip("too many redirects")

    def _fetch_once(self, url: str, accept: set[str] | None) -> Page | str:
        """The page, or the absolute URL a redirect points to."""
        accept = ACCEPTED_TYPES if accept is None else accept
        limit = int(self.settings.crawl_max_bytes)
        try:
            with self.client.stream("GET", url) as resp:
                final = normalize(str(resp.url))
                if resp.is_redirect and resp.headers.get("location"):
                    return normalize(urljoin(final, resp.headers["location"]))
                if resp.status_code != 200:
                    raise FetchSkip(f"HTTP {resp.status_code}", resp.status_code)
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if accept and ctype and ctype not in accept:
                    raise FetchSkip(f"unsupported content type {ctype}")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise FetchSkip(f"larger than the fetch.crawl_max_bytes limit ({int(declared):,} bytes)")
                buf = bytearray()
                for piece in resp.iter_bytes():
                    buf += piece
                    if len(buf) > limit:
                        raise FetchSkip(f"larger than the fetch.crawl_max_bytes limit ({limit:,} bytes)")
                return Page(final, bytes(buf), ctype, resp.headers.get("last-modified"))
        except BlockedAddressError as exc:
            raise FetchSkip(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise FetchSkip(f"timed out after {self.settings.crawl_timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            blocked = blocked_cause(exc)
            if blocked is not None:
                raise FetchSkip(str(blocked)) from exc
            raise FetchSkip(f"cannot fetch: {exc.__class__.__name__}: {exc}") from exc

    # -------------------------------------------------------------------------------------- robots
    def robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        key = _site(url)
        if key in self.robots:
            return self.robots[key]
        p = urlsplit(url)
        robots_url = f"{p.scheme}://{p.netloc}/robots.txt"
        placeholder = urllib.robotparser.RobotFileParser(robots_url)
        placeholder.allow_all = True
        self.robots[key] = placeholder  # fetch() consults robots for redirects: no recursion
        rp = urllib.robotparser.RobotFileParser(robots_url)
        try:
            page = self.fetch(robots_url, accept=set())
            rp.parse(page.data[: 512 * 1024].decode("utf-8", "replace").splitlines())
        except FetchSkip as exc:
            if exc.status in (401, 403) or (exc.status or 0) >= 500:
                rp.disallow_all = True  # RFC 9309: 5xx means assume complete disallow
            else:
                rp.allow_all = True  # no robots.txt (or unreachable: the page fetch will report that)
        rp.modified()
        self.robots[key] = rp
        return rp

    def allowed(self, url: str) -> bool:
        return self.robots_for(url).can_fetch(self.settings.user_agent, url)

    # ------------------------------------------------------------------------------------- sitemap
    def sitemap_urls(self, start: str) -> list[str]:
        """Page URLs from the site's sitemaps (robots.txt ``Sitemap:`` lines, else /sitemap.xml)."""
        rp = self.robots_for(start)
        p = urlsplit(start)
        queue = deque(rp.site_maps() or [f"{p.scheme}://{p.netloc}/sitemap.xml"])
        seen: set[str] = set()
        pages: list[str] = []
        while queue and len(seen) < 20 and len(pages) < MAX_SITEMAP_URLS:
            sm = queue.popleft()
            if sm in seen or not same_host(sm, start):
                continue
            seen.add(sm)
            try:
                page = self.fetch(sm, accept=set())
                root = ET.fromstring(page.data)
            except (FetchSkip, ET.ParseError):
                continue
            tag = root.tag.rsplit("}", 1)[-1]
            locs = [el.text.strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "loc" and el.text]
            if tag == "sitemapindex":
                queue.extend(locs)
            else:
                pages.extend(normalize(u) for u in locs if same_host(u, start))
        return pages[:MAX_SITEMAP_URLS]


def extract_links(html: bytes, base: str) -> list[str]:
    """Absolute http(s) links of ``<a href>`` elements (``rel=nofollow`` skipped), fragments dropped."""
    import lxml.html

    try:
        with HTML_LOCK:  # one page at a time: see groundglass.threads
            tree = lxml.html.fromstring(html, base_url=base)
    except (ValueError, lxml.etree.ParserError):
        return []
    base_el = tree.find(".//base[@href]")
    base_url = urljoin(base, base_el.get("href")) if base_el is not None else base
    out: list[str] = []
    for a in tree.iter("a"):
        href = a.get("href")
        if not href or "nofollow" in (a.get("rel") or "").lower():
            continue
        url = normalize(urljoin(base_url, href))
        if urlsplit(url).scheme in ("http", "https"):
            out.append(url)
    return list(dict.fromkeys(out))


def is_html(page: Page) -> bool:
    """An HTML page, by its content type, or by its first bytes when it names none."""
    head = page.data.lstrip()[:15].lower()
    return page.content_type in ("text/html", "application/xhtml+xml") or (
        not page.content_type and head.startswith((b"<!doctype html", b"<html"))
    )


def crawl(
    start_url: str, crawl_settings: CrawlSettings, fetch: FetchSettings
) -> Iterator[Document | Skipped]:
    """Documents of the site at ``start_url`` (see the module docstring); skips come with reasons."""
    start = normalize(start_url)
    policy = Policy.from_settings(fetch)
    try:
        check_url(start, policy)
    except GroundglassError as exc:
        yield Skipped(start, str(exc))
        return
    crawler = Crawler(fetch)
    try:
        yield from _walk(
            crawler, start, int(crawl_settings.max_pages), int(crawl_settings.max_depth), fetch.user_agent
        )
    finally:
        crawler.close()


def _walk(
    crawler: Crawler, start: str, max_pages: int, max_depth: int, user_agent: str
) -> Iterator[Document | Skipped]:
    """Breadth first from ``start`` (and its sitemap's pages, one link deep), on the same host, up to
    ``max_pages`` pages fetched and ``max_depth`` links deep, waiting robots.txt's crawl delay."""
    queue: deque[tuple[str, int]] = deque([(start, 0)])
    if max_depth >= 1:
        queue.extend((u, 1) for u in crawler.sitemap_urls(start))
    seen: set[str] = set()
    seen_content: set[str] = set()  # one page under two URLs (/ and /index.html) is ingested once
    fetched = 0
    delay = min(MAX_CRAWL_DELAY_S, float(crawler.robots_for(start).crawl_delay(user_agent) or 0))
    while queue and fetched < max_pages:
        url, depth = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        if not crawler.allowed(url):
            yield Skipped(url, "disallowed by robots.txt")
            continue
        if fetched and delay:
            time.sleep(delay)
        try:
            page = crawler.fetch(url)
        except FetchSkip as exc:
            yield Skipped(url, str(exc))
            continue
        fetched += 1
        if page.url != url:
            if page.url in seen:
                continue
            seen.add(page.url)
        digest = hashlib.sha256(page.data).hexdigest()
        if digest in seen_content:
            log.debug("crawl.duplicate", url=page.url)
            continue
        seen_content.add(digest)
        if is_html(page) and depth < max_depth:
            for link in extract_links(page.data, page.url):
                if same_host(link, start) and link not in seen:
                    queue.append((link, depth + 1))
        yield _document(page)


def _document(page: Page) -> Document | Skipped:
    """The document a fetched page holds, dated by its Last-Modified header; a skip when it holds none."""
    try:
        doc = extract_bytes(page.data, page.url, name=urlsplit(page.url).path, content_type=page.content_type)
    except SkipFile as exc:
        return Skipped(page.url, str(exc))
    doc.last_updated = http_date_day(page.last_modified)
    return doc
