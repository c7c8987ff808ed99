"""DuckDuckGo (no key) through the ``ddgs`` package's DuckDuckGo engine.

We drive ddgs's own ``Duckduckgo`` engine (its HTTP client, its request payload, its HTML parsing)
but make the request ourselves so that the HTTP status is seen: ddgs turns every non-200 answer into
"no results", while a 202/403/429 from DuckDuckGo means "rate limited" and must fail over. The
engine's ``search_url`` comes from ``search.duckduckgo.base_url`` so tests and mirrors can point it
elsewhere. ddgs is synchronous, so the call runs in a worker thread.

DuckDuckGo knows a time limit (d/w/m/y) and a region; domains, exact dates and languages are ours.
The asker's country (``user_location``) sets the region over ``search.duckduckgo.region``: one of
DuckDuckGo's own region codes (``kl``), which are country-language pairs with spellings of their own
(``uk-en`` for Britain, ``jp-jp``, ``kr-kr``, ``hk-tzh``, ``sl-sl`` for Slovenia, ``xa-ar`` for the
Arab world), the one in the asker's language filter or the country's most spoken language when the
country has several. A country DuckDuckGo has no region for gets none, and the search report does
not claim DuckDuckGo used it (:meth:`DuckDuckGoProvider.location_parts`).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

from groundglass.answer.search.base import ProviderError, SearchResult
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.location import country_language
from groundglass.config import DuckDuckGoSettings
from groundglass.threads import HTML_LOCK

_TIMELIMIT = {"hour": "d", "day": "d", "week": "w", "month": "m", "year": "y"}


_KP = {"on": "1", "moderate": "-1", "off": "-2"}  # DuckDuckGo's safe-search parameter


class DuckDuckGoProvider:
    name = "duckduckgo"
    location_fields = ("country",)
    takes_safe_search = True  # DuckDuckGo's kp=1 (strict)

    def location_parts(self, filters: SearchFilters) -> tuple[str, ...]:
        """``country`` when DuckDuckGo has a region for it, else nothing."""
        return ("country",) if region(filters) else ()

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
        return f"{self.settings.base_url}|{self.settings.locale}|{self.settings.safesearch}"

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
            region=region(filters) or self.settings.locale,
            safesearch=self.settings.safesearch,
            timelimit=_TIMELIMIT.get(filters.recency or ""),
            page=1,
        )
        # ddgs' html engine drops its safesearch argument: DuckDuckGo's own kp says it (1 strict,
        # -1 moderate, -2 off), search.duckduckgo.safesearch's, or strict under safe_search
        payload["kp"] = _KP["on" if filters.safe_search else self.settings.safesearch]
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


# DuckDuckGo's region codes (its settings' region list, the values of its kl parameter), wt-wt (no
# region) left out
REGIONS = (
    "xa-ar xa-en ar-es au-en at-de be-fr be-nl br-pt bg-bg ca-en ca-fr ct-ca cl-es cn-zh co-es hr-hr "
    "cz-cs dk-da ee-et fi-fi fr-fr de-de gr-el hk-tzh hu-hu in-en id-id id-en ie-en il-he it-it jp-jp "
    "kr-kr lv-lv lt-lt xl-es my-ms my-en mx-es nl-nl nz-en no-no pe-es ph-en ph-tl pl-pl pt-pt ro-ro "
    "ru-ru sg-en sk-sk sl-sl za-en es-es se-sv ch-de ch-fr ch-it tw-tzh th-th tr-tr ua-uk uk-en us-en "
    "ue-es ve-es vn-vi"
).split()
_COUNTRY = {"GB": "uk", "SI": "sl", "SA": "xa"}  # ISO 3166-1 code -> DuckDuckGo's, where they differ
_MORE = {"US": ["ue-es"], "ES": ["ct-ca"]}  # regions of a country under another code (US Spanish, Catalan)
_LANGUAGES = {"jp": {"ja"}, "kr": {"ko"}, "tzh": {"zh"}, "no": {"nb", "nn", "no"}, "tl": {"fil", "tl"}}


def _languages(code: str) -> set[str]:
    """The ISO 639 codes of a DuckDuckGo region's language part."""
    part = code.split("-", 1)[1]
    return _LANGUAGES.get(part, {part})


def region(filters: SearchFilters) -> str | None:
    """The asker's country as DuckDuckGo's region code, or None when DuckDuckGo has none for it."""
    country = filters.location.country.upper() if filters.location and filters.location.country else None
    if country is None:
        return None
    prefix = _COUNTRY.get(country, country.lower())
    codes = [c for c in REGIONS if c.split("-", 1)[0] == prefix] + _MORE.get(country, [])
    if not codes:
        return None
    for language in [*filters.languages, country_language(country) or ""]:
        for code in codes:
            if language in _languages(code):
                return code
    return codes[0]


def parse_html(html_text: str, engine: Any = None) -> list[SearchResult]:
    """Results of a DuckDuckGo HTML results page, parsed by ddgs's engine (its XPaths and cleaning)."""
    if engine is None:
        from ddgs.engines.duckduckgo import Duckduckgo

        engine = Duckduckgo()
    if not html_text.strip():
        raise ProviderError("malformed", "duckduckgo: empty results page")
    try:
        with HTML_LOCK:  # lxml, one page at a time: see groundglass.threads
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
