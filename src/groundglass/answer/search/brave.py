"""Brave Search API: ``GET {base_url}/web/search`` with the ``X-Subscription-Token`` header.

Brave understands ``freshness`` (pd/pw/pm/py, or ``YYYY-MM-DDtoYYYY-MM-DD``) and ``search_lang``;
domain filters are ours. It takes the whole asker's location: ``country`` as a parameter (over
``search.brave.country``), the rest as its ``X-Loc-*`` headers. Results carry ``page_age`` (ISO
date-time) or a human ``age``, and often a ``language``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from groundglass.answer.search.base import SearchResult, get_json, results_list, text_or_empty
from groundglass.answer.search.filters import SearchFilters
from groundglass.config import BraveSettings

_FRESHNESS = {"hour": "pd", "day": "pd", "week": "pw", "month": "pm", "year": "py"}


# the asker's location as Brave's headers (its "local" results use them)
_LOCATION_HEADERS = {
    "country": "X-Loc-Country",
    "region": "X-Loc-State-Name",
    "city": "X-Loc-City",
    "latitude": "X-Loc-Lat",
    "longitude": "X-Loc-Long",
    "timezone": "X-Loc-Timezone",
}


class BraveProvider:
    name = "brave"
    location_fields = tuple(_LOCATION_HEADERS)

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
        country = filters.location.country if filters.location else None
        if country or self.settings.country:
            params["country"] = country or self.settings.country
        return params

    @staticmethod
    def location_headers(filters: SearchFilters) -> dict[str, str]:
        where = filters.location
        if where is None:
            return {}
        return {
            header: str(getattr(where, f))
            for f, header in _LOCATION_HEADERS.items()
            if getattr(where, f) is not None
        }

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
