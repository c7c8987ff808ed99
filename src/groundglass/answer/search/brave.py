"""Brave Search API: ``GET {base_url}/web/search`` with the ``X-Subscription-Token`` header.

Brave understands ``freshness`` (pd/pw/pm/py, or ``YYYY-MM-DDtoYYYY-MM-DD``) and ``search_lang``;
domain filters are ours. It takes the whole asker's location: ``country`` as a parameter (over
``search.brave.country``), the rest as its ``X-Loc-*`` headers: a region of up to three letters or
digits is a code (``X-Loc-State``, the first level of ISO 3166-2), a longer one a name
(``X-Loc-State-Name``). A header carries ASCII only (HTTP reads other bytes as Latin-1, so UTF-8
"Zürich" would arrive as "ZÃ¼rich"): names are sent in their ASCII form ("Zurich", Brave's "generic
name"), and a name that has none (another script) is left out, so the search report does not claim
Brave used it (:meth:`BraveProvider.location_parts`). Results carry ``page_age`` (ISO
date-time) or a human ``age``, and often a ``language``. For ``return_images`` its image search is
asked too (``GET {base_url}/images/search``, :meth:`BraveProvider.images`): each result names the
image, its size (``properties``) and the page it is on.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

import httpx

from groundglass.answer.search.base import SearchResult, get_json, results_list, text_or_empty
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.images import PageImage
from groundglass.config import BraveSettings

_FRESHNESS = {"hour": "pd", "day": "pd", "week": "pw", "month": "pm", "year": "py"}


# the asker's location as Brave's headers (its "local" results use them); region: see _region_header
_LOCATION_HEADERS = {
    "country": "X-Loc-Country",
    "region": "X-Loc-State-Name",
    "city": "X-Loc-City",
    "latitude": "X-Loc-Lat",
    "longitude": "X-Loc-Long",
    "timezone": "X-Loc-Timezone",
}
_STATE_CODE = re.compile(r"[A-Za-z0-9]{1,3}")
# letters that Unicode does not decompose into an ASCII letter and a mark
_FOLD = str.maketrans(
    {"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE"}
    | {"đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i", "ħ": "h", "Ħ": "H"}
)


def ascii_name(text: str) -> str | None:
    """``text`` in ASCII letters ("Zürich" -> "Zurich", "Łódź" -> "Lodz"), or None when it has no such
    form (a name in another script)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    out = "".join(c for c in decomposed if not unicodedata.combining(c)).strip()
    return out if out and out.isascii() else None


class BraveProvider:
    name = "brave"
    location_fields = tuple(_LOCATION_HEADERS)
    takes_safe_search = True  # its safesearch parameter, strict

    def __init__(self, settings: BraveSettings, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.settings = settings
        self.client = client
        self.timeout_s = timeout_s

    def configured(self) -> str | None:
        if not self.settings.key():
            return "set $BRAVE_API_KEY (or search.brave.api_key)"
        return None

    def fingerprint(self) -> str:
        return self.settings.base_url.rstrip("/")

    def params(self, query: str, filters: SearchFilters, max_results: int) -> dict[str, Any]:
        params: dict[str, Any] = {"q": query, "count": min(20, max_results)}
        if filters.after or filters.before:
            start = filters.after or date(1990, 1, 1)
            end = filters.before or date.today()
            params["freshness"] = f"{start.isoformat()}to{end.isoformat()}"
        elif filters.recency:
            params["freshness"] = _FRESHNESS[filters.recency]
        if filters.languages:
            params["search_lang"] = filters.languages[0]
        if filters.safe_search:
            params["safesearch"] = "strict"
        country = filters.location.country if filters.location else None
        if country or self.settings.country:
            params["country"] = country or self.settings.country
        return params

    @staticmethod
    def location_values(filters: SearchFilters) -> dict[str, tuple[str, str]]:
        """Each part of the asker's location that can be sent: field -> (header, ASCII value)."""
        where = filters.location
        if where is None:
            return {}
        out: dict[str, tuple[str, str]] = {}
        for f, header in _LOCATION_HEADERS.items():
            value = getattr(where, f)
            if value is None:
                continue
            text = ascii_name(str(value))
            if text is None:
                continue  # no ASCII form: left out (and not reported as used)
            if f == "region" and _STATE_CODE.fullmatch(text):
                header = "X-Loc-State"  # "CA", "ZH": a code, not a name
            out[f] = (header, text)
        return out

    def location_headers(self, filters: SearchFilters) -> dict[str, str]:
        """The asker's location as ``X-Loc-*`` headers, ASCII only."""
        return dict(self.location_values(filters).values())

    def location_parts(self, filters: SearchFilters) -> tuple[str, ...]:
        """The parts of the asker's location this provider is given for ``filters``."""
        parts = set(self.location_values(filters))
        if filters.location is not None and filters.location.country:
            parts.add("country")  # also the country parameter
        return tuple(f for f in self.location_fields if f in parts)

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        url = self.settings.base_url.rstrip("/") + "/web/search"
        headers = {
            "X-Subscription-Token": self.settings.key(),
            "Accept": "application/json",
            **self.location_headers(filters),
        }
        data = await get_json(
            self.client,
            self.name,
            "GET",
            url,
            timeout_s=self.timeout_s,
            params=self.params(query, filters, max_results),
            headers=headers,
        )
        return parse(data)[:max_results]

    async def images(self, query: str, filters: SearchFilters, max_results: int) -> list[PageImage]:
        """Image results for ``query``; raises ProviderError like search."""
        web = self.params(query, filters, max_results)
        params = {k: v for k, v in web.items() if k in ("q", "country", "search_lang")}
        params["count"] = min(100, max_results)
        headers = {
            "X-Subscription-Token": self.settings.key(),
            "Accept": "application/json",
            **self.location_headers(filters),
        }
        url = self.settings.base_url.rstrip("/") + "/images/search"
        data = await get_json(
            self.client, self.name, "GET", url, timeout_s=self.timeout_s, params=params, headers=headers
        )
        return parse_images(data)[:max_results]


def parse_images(data: Any) -> list[PageImage]:
    """Images of a Brave image search answer (``results[].properties.url/width/height``, ``url``)."""
    out: list[PageImage] = []
    for item in results_list(data, BraveProvider.name, "results"):
        props = item.get("properties") if isinstance(item, dict) else None
        if not isinstance(props, dict):
            continue
        src, page = text_or_empty(props.get("url")), text_or_empty(item.get("url"))
        if not src.startswith(("http://", "https://")) or not page.startswith(("http://", "https://")):
            continue
        width, height = props.get("width"), props.get("height")
        out.append(
            PageImage(
                image_url=src,
                origin_url=page,
                title=text_or_empty(item.get("title")),
                width=width if isinstance(width, int) and width > 0 else None,
                height=height if isinstance(height, int) and height > 0 else None,
            )
        )
    return out


def parse(data: Any) -> list[SearchResult]:
    """Results of a Brave web search answer (``web.results[].url/title/description/page_age``)."""
    if isinstance(data, dict) and "web" not in data and data.get("type") == "search":
        return []  # a valid answer with no web results
    out: list[SearchResult] = []
    for item in results_list(data, BraveProvider.name, "web", "results"):
        if not isinstance(item, dict):
            continue
        url = text_or_empty(item.get("url"))
        if not url.startswith(("http://", "https://")):
            continue
        when = text_or_empty(item.get("page_age")) or text_or_empty(item.get("age")) or None
        out.append(
            SearchResult(
                url=url,
                title=text_or_empty(item.get("title")) or url,
                snippet=text_or_empty(item.get("description")),
                date=when,
                language=text_or_empty(item.get("language")) or None,
                provider=BraveProvider.name,
            )
        )
    return out
