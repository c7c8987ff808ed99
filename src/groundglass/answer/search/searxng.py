"""SearXNG through its JSON API: ``GET {base_url}/search?q=...&format=json``.

The instance must list ``json`` under ``search.formats`` in its settings.yml (otherwise it answers
403, reported as such). SearXNG knows ``time_range`` day/month/year (and week on recent versions)
and one ``language``; domain and exact date filters are left to us. For ``return_images`` it is asked
again in its ``images`` category (:meth:`SearxngProvider.images`): each result names the image, the
page it is on and often its ``resolution``. Of the asker's location it takes
the country, as the region of its ``language`` locale (``fr-CH``: see :mod:`.location`).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from groundglass.answer.search.base import (
    SearchResult,
    get_json,
    parse_result_items,
    results_list,
    text_or_empty,
)
from groundglass.answer.search.filters import SearchFilters
from groundglass.answer.search.images import PageImage
from groundglass.answer.search.location import country_locale
from groundglass.config import SearxngSettings

_RESOLUTION = re.compile(r"(\d{1,5})\s*[x\u00d7]\s*(\d{1,5})")  # "1920 x 1080"
_TIME_RANGE = {"hour": "day", "day": "day", "week": "week", "month": "month", "year": "year"}
# the language codes SearXNG's search API accepts (searx.webadapter's VALID_LANGUAGE_CODE): "de",
# "de-CH"; anything else is answered with HTTP 400
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[a-zA-Z]{2})?")


class SearxngProvider:
    name = "searxng"
    location_fields = ("country",)
    takes_safe_search = True  # its safesearch parameter, 2 (strict)

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
        if filters.safe_search:
            params["safesearch"] = 2
        country = filters.location.country if filters.location else None
        locale = country_locale(country, filters.languages) if country else None
        if locale and LANGUAGE_CODE.fullmatch(locale):  # what SearXNG accepts, else it answers 400
            params["language"] = locale
        return params

    async def search(self, query: str, filters: SearchFilters, max_results: int) -> list[SearchResult]:
        url = self.settings.base_url.rstrip("/") + "/search"
        data = await get_json(
            self.client, self.name, "GET", url, timeout_s=self.timeout_s, params=self.params(query, filters)
        )
        return parse(data)[:max_results]

    async def images(self, query: str, filters: SearchFilters, max_results: int) -> list[PageImage]:
        """Image results (the ``images`` category) for ``query``; raises ProviderError like search."""
        url = self.settings.base_url.rstrip("/") + "/search"
        params = {**self.params(query, filters), "categories": "images"}
        params.pop("engines", None)  # the configured engines are web engines
        data = await get_json(self.client, self.name, "GET", url, timeout_s=self.timeout_s, params=params)
        return parse_images(data)[:max_results]


def parse_images(data: Any) -> list[PageImage]:
    """Images of a SearXNG ``images`` answer (``results[].img_src/url/title/content/resolution``)."""
    out: list[PageImage] = []
    for item in results_list(data, SearxngProvider.name, "results"):
        if not isinstance(item, dict):
            continue
        src, page = text_or_empty(item.get("img_src")), text_or_empty(item.get("url"))
        if not src.startswith(("http://", "https://")) or not page.startswith(("http://", "https://")):
            continue
        size = _RESOLUTION.search(text_or_empty(item.get("resolution")))
        out.append(
            PageImage(
                image_url=src,
                origin_url=page,
                title=text_or_empty(item.get("title")),
                width=int(size.group(1)) if size else None,
                height=int(size.group(2)) if size else None,
                context=text_or_empty(item.get("content")),
            )
        )
    return out


def parse(data: Any) -> list[SearchResult]:
    """Results of a SearXNG JSON answer (``results[].url/title/content/publishedDate``)."""
    return parse_result_items(data, SearxngProvider.name, snippet_key="content", date_key="publishedDate")
