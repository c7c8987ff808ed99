"""DuckDuckGo (no key) through the ``ddgs`` package's DuckDuckGo engine.

We drive ddgs's own ``Duckduckgo`` engine (its HTTP client, its request payload, its HTML parsing)
but make the request ourselves so that the HTTP status is seen: ddgs turns every non-200 answer into
"no results", while a 202/403/429 from DuckDuckGo means "rate limited" and must fail over. The
engine's ``search_url`` comes from ``search.duckduckgo.base_url`` so tests and mirrors can point it
elsewhere. ddgs is synchronous, so the call runs in a worker thread.

DuckDuckGo knows a time limit (d/w/m/y) and a region; domains, exact dates and languages are ours.
The asker's country (``user_location``) sets the region over ``search.duckduckgo.region``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

from groundglass.answer.search.base import ProviderError, SearchResult
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.location import country_locale
from groundglass.config import DuckDuckGoSettings

_TIMELIMIT = {"hour": "d", "day": "d", "week": "w", "month": "m", "year": "y"}


class DuckDuckGoProvider:
    name = "duckduckgo"
    location_fields = ("country",)

    def __init__(self, settings: DuckDuckGoSettings, timeout_s: float) -> None:
        self.settings = settings
        self.timeout_s = timeout_s

    def configured(self) -> str | None:
        try:
            import ddgs  # noqa: F401
        except ImportError:
            return "install the ddgs package: pip install ddgs"
        return None

    def fingerprint(self) -> str:
        return f"{self.settings.base_url}|{self.settings.region}|{self.settings.safesearch}"

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.to_thread(self._search_sync, query, filters, max_results)
        except TimeoutError as exc:
            raise ProviderError("timeout", f"duckduckgo: no answer within {self.timeout_s:g} s") from exc

    def _search_sync(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        from ddgs.engines.duckduckgo import Duckduckgo
        from ddgs.exceptions import DDGSException, TimeoutException

        engine = Duckduckgo(timeout=max(1, round(self.timeout_s)))
        engine.search_url = self.settings.base_url
        payload = engine.build_payload(
            query=query,
            region=region(filters) or self.settings.region,
            safesearch=self.settings.safesearch,
            timelimit=_TIMELIMIT.get(filters.recency or ""),
            page=1,
        )
        try:
            response = engine.http_client.request(engine.search_method, engine.search_url, data=payload)
        except TimeoutException as exc:
            raise ProviderError("timeout", f"duckduckgo: timed out ({exc})") from exc
        except DDGSException as exc:
            where = engine.search_url
            raise ProviderError("unreachable", f"duckduckgo: cannot reach {where}: {exc}") from exc
        status = response.status_code
        if status in (202, 403, 429):  # DuckDuckGo's ways of saying "slow down"
            raise ProviderError("rate_limited", f"duckduckgo: rate limited (HTTP {status})")
        if status != 200:
            raise ProviderError("http_error", f"duckduckgo: HTTP {status}")
        return parse_html(response.text, engine)[:max_results]


def region(filters: SearchFilters) -> str | None:
    """The asker's country as DuckDuckGo's region code (``ch-fr``: country, then language; the United
    Kingdom is ``uk``), or None."""
    country = filters.location.country if filters.location else None
    locale = country_locale(country, filters.languages) if country else None
    if locale is None:
        return None
    language, code = locale.split("-", 1)
    return f"{'uk' if code == 'GB' else code.lower()}-{language}"


def parse_html(html_text: str, engine: Any = None) -> list[SearchResult]:
    """Results of a DuckDuckGo HTML results page, parsed by ddgs's engine (its XPaths and cleaning)."""
    if engine is None:
        from ddgs.engines.duckduckgo import Duckduckgo

        engine = Duckduckgo()
    if not html_text.strip():
        raise ProviderError("malformed", "duckduckgo: empty results page")
    try:
        items = engine.post_extract_results(engine.extract_results(html_text))
    except Exception as exc:  # lxml raises assorted errors on garbage
        raise ProviderError("malformed", f"duckduckgo: cannot parse the results page ({exc})") from exc
    out: list[SearchResult] = []
    for item in items:
        url = _unwrap(item.href)
        if not url.startswith(("http://", "https://")):
            continue
        out.append(SearchResult(url=url, title=item.title or url, snippet=item.body, provider="duckduckgo"))
    return out


def _unwrap(href: str) -> str:
    """DuckDuckGo's redirect links (``//duckduckgo.com/l/?uddg=TARGET``) -> TARGET."""
    if "duckduckgo.com/l/" in href:
        target = parse_qs(urlsplit(href if "://" in href else "https:" + href).query).get("uddg")
        if target:
            return target[0]
    return href
