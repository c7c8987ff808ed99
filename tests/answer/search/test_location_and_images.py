"""The asker's location in each provider's wire format, and ``return_images`` from Brave and the pages
read, on the loopback search API and site (the server-level tests cover SearXNG and Tavily)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from loopback_web import search_settings
from test_search_providers import run_provider

from groundglass.answer.search.filters import Location, SearchFilters
from groundglass.answer.search.images import ImageFilters
from groundglass.answer.search.web import WebRetriever

ZURICH = Location(
    country="CH", region="Zürich", city="Zürich", latitude=47.37, longitude=8.54, timezone="Europe/Zurich"
)


def test_each_provider_is_given_the_parts_of_the_location_it_takes(tmp_path: Path, search_api: Any) -> None:
    located = replace(SearchFilters(), location=ZURICH)
    for name in ("brave", "searxng", "tavily", "duckduckgo"):
        assert run_provider(search_settings(tmp_path, search_api, [name]), name, located)
    brave, searxng, tavily, ddg = search_api.requests
    assert brave["query"]["country"] == "CH"
    sent = {k: v for k, v in brave["headers"].items() if k.lower().startswith("x-loc-")}
    assert {k.lower(): v for k, v in sent.items()} == {
        "x-loc-country": "CH",
        "x-loc-state-name": "Zürich".encode().decode("latin-1"),  # UTF-8 bytes, as the server reads them
        "x-loc-city": "Zürich".encode().decode("latin-1"),
        "x-loc-lat": "47.37",
        "x-loc-long": "8.54",
        "x-loc-timezone": "Europe/Zurich",
    }
    assert searxng["query"]["language"] == "de-CH"
    assert json.loads(tavily["body"])["country"] == "switzerland"
    assert "l=ch-de" in ddg["body"].split("&")  # ddgs's region field
    # a language filter picks the locale's language
    french = replace(SearchFilters.build(languages=["fr"]), location=Location(country="CH"))
    run_provider(search_settings(tmp_path, search_api, ["searxng"]), "searxng", french)
    assert search_api.requests[-1]["query"]["language"] == "fr-CH"


def test_brave_image_results_join_the_pages_images(tmp_path: Path, web_site: Any, search_api: Any) -> None:
    settings = search_settings(tmp_path, search_api, ["brave"])
    filters = replace(SearchFilters(), images=ImageFilters())
    _, report = WebRetriever(settings).retrieve("Which gallery photographs show the lantern room?", filters)
    site = web_site.base_url
    found = {
        (i["image_url"].removeprefix(site), i["width"], i["height"], i["origin_url"]) for i in report.images
    }
    assert ("/photos/lantern.jpg", 800, 600, site + "/gallery.html") in found  # Brave's, sized by Brave
    assert ("/photos/keeper.jpg", 640, 480, site + "/gallery.html") in found  # the page's own
    assert report.images[0]["image_url"] == site + "/photos/keeper.jpg"  # "lantern room" is its alt text
    assert web_site.hits["/photos/lantern.jpg"] == 0  # sized already: not fetched
    assert [r["path"] for r in search_api.requests] == [
        "/brave/res/v1/web/search",
        "/brave/res/v1/images/search",
    ]
    assert "images" not in report.as_dict()  # the answer lists them once, not in each query's report
