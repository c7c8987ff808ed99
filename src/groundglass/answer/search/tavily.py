"""Tavily: ``POST {base_url}/search`` with a JSON body and ``Authorization: Bearer KEY``.

Tavily understands domain lists, ``time_range`` and ``start_date``/``end_date``; we send them and
check them again. Of the asker's location it takes the country, by its English name (``country``,
which boosts that country's results). ``content`` is a query-relevant extract of the page, used as
the snippet; the page itself is read by our reader like any other.
"""

from __future__ import annotations

from typing import Any

import httpx

from groundglass.answer.search.base import SearchResult, get_json, parse_result_items
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.location import country_name
from groundglass.config import TavilySettings

_TIME_RANGE = {"hour": "day", "day": "day", "week": "week", "month": "month", "year": "year"}


class TavilyProvider:
    name = "tavily"
    location_fields = ("country",)
    takes_safe_search = False  # no adult-content filter is sent (so it is not asked under safe_search)

    def __init__(self, settings: TavilySettings, client: httpx.AsyncClient, timeout_s: float) -> None:
        self.settings = settings
        self.client = client
        self.timeout_s = timeout_s

    def configured(self) -> str | None:
        if not self.settings.key():
            return "set $TAVILY_API_KEY (or search.tavily.api_key)"
        return None

    def fingerprint(self) -> str:
        return f"{self.settings.base_url.rstrip('/')}|{self.settings.search_depth}"

    def body(self, query: str, filters: SearchFilters, max_results: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": query,
            "max_results": min(20, max_results),
            "search_depth": self.settings.search_depth,
            "topic": "general",
        }
        if filters.allow_domains:
            body["include_domains"] = list(filters.allow_domains)
        if filters.deny_domains:
            body["exclude_domains"] = list(filters.deny_domains)
        if filters.recency:
            body["time_range"] = _TIME_RANGE[filters.recency]
        if filters.after:
            body["start_date"] = filters.after.isoformat()
        if filters.before:
            body["end_date"] = filters.before.isoformat()
        country = filters.location.country if filters.location else None
        name = country_name(country) if country else None
        if name:
            body["country"] = name.lower()
        return body

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        url = self.settings.base_url.rstrip("/") + "/search"
        headers = {"Authorization": f"Bearer {self.settings.key()}", "Content-Type": "application/json"}
        data = await get_json(
            self.client,
            self.name,
            "POST",
            url,
            timeout_s=self.timeout_s,
            json=self.body(query, filters, max_results),
            headers=headers,
        )
        return parse(data)[:max_results]


def parse(data: Any) -> list[SearchResult]:
    """Results of a Tavily answer (``results[].url/title/content/score/published_date``)."""
    return parse_result_items(data, TavilyProvider.name, snippet_key="content", date_key="published_date")
