"""SearXNG through its JSON API: ``GET {base_url}/search?q=...&format=json``.

The instance must list ``json`` under ``search.formats`` in its settings.yml (otherwise it answers
403, reported as such). SearXNG knows ``time_range`` day/month/year (and week on recent versions)
and one ``language``; domain and exact date filters are left to us. Of the asker's location it takes
the country, as the region of its ``language`` locale (``fr-CH``: see :mod:`.location`).
"""

from __future__ import annotations

from typing import Any

import httpx

from groundglass.answer.search.base import SearchResult, get_json, parse_result_items
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.location import country_locale
from groundglass.config import SearxngSettings

_TIME_RANGE = {"hour": "day", "day": "day", "week": "week", "month": "month", "year": "year"}


class SearxngProvider:
    name = "searxng"
    location_fields = ("country",)

    def __init__(self, settings: SearxngSettings, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.settings = settings
        self.client = client
        self.timeout_s = timeout_s

    def configured(self) -> str | None:
        if not self.settings.base_url:
            return "set search.searxng.base_url to your instance, e.g. http://localhost:8888"
        return None

    def fingerprint(self) -> str:
        return self.settings.base_url.rstrip("/")

    def params(self, query: str, filters: SearchFilters) -> dict[str, Any]:
        params: dict[str, Any] = {"q": query, "format": "json", "pageno": 1}
        if self.settings.categories:
            params["categories"] = self.settings.categories
        if self.settings.engines:
            params["engines"] = self.settings.engines
        if filters.recency:
            params["time_range"] = _TIME_RANGE[filters.recency]
        if filters.languages:
            params["language"] = filters.languages[0]
        country = filters.location.country if filters.location else None
        locale = country_locale(country, filters.languages) if country else None
        if locale:
            params["language"] = locale
        return params

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        url = self.settings.base_url.rstrip("/") + "/search"
        data = await get_json(
            self.client, self.name, "GET", url, timeout_s=self.timeout_s, params=self.params(query, filters)
        )
        return parse(data)[:max_results]


def parse(data: Any) -> list[SearchResult]:
    """Results of a SearXNG JSON answer (``results[].url/title/content/publishedDate``)."""
    return parse_result_items(data, SearxngProvider.name, snippet_key="content", date_key="publishedDate")
