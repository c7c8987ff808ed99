"""The asker's location in each provider's wire format, and ``return_images`` from Brave and the pages
read, on the loopback search API and site (the server-level tests cover SearXNG and Tavily)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
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
    assert brave_location(brave) == {
        "x-loc-country": "CH",
        "x-loc-state-name": "Zurich",  # ASCII: UTF-8 bytes would be read as Latin-1 ("ZÃ¼rich")
        "x-loc-city": "Zurich",
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


def brave_location(request: dict[str, Any]) -> dict[str, str]:
    """The X-Loc-* headers of a request to the loopback Brave, as its server read them."""
    return {k.lower(): v for k, v in request["headers"].items() if k.lower().startswith("x-loc-")}


def test_brave_gets_state_codes_and_ascii_names_and_the_report_says_what_it_got(
    tmp_path: Path, search_api: Any
) -> None:
    settings = search_settings(tmp_path, search_api, ["brave"])
    where = Location(country="US", region="CA", city="San José")
    run_provider(settings, "brave", replace(SearchFilters(), location=where))
    assert brave_location(search_api.requests[-1]) == {
        "x-loc-country": "US",
        "x-loc-state": "CA",  # a code of up to 3 characters is X-Loc-State, a name X-Loc-State-Name
        "x-loc-city": "San Jose",
    }
    # a city in another script has no ASCII form: left out, and not reported as used
    tokyo = replace(SearchFilters(), location=Location(country="JP", region="東京都", city="新宿区"))
    _, report = WebRetriever(settings).search("eddystone lighthouse", tokyo)
    assert brave_location(search_api.requests[-1]) == {"x-loc-country": "JP"}
    assert report.location_used_by == {"brave": ["country"]}


@pytest.mark.parametrize(
    ("country", "languages", "kl"),
    [
        ("JP", [], "jp-jp"),  # DuckDuckGo's own spellings, not country-language
        ("KR", [], "kr-kr"),
        ("GB", [], "uk-en"),
        ("SI", [], "sl-sl"),
        ("TW", [], "tw-tzh"),
        ("SA", [], "xa-ar"),
        ("CH", ["fr"], "ch-fr"),  # the language filter picks among the country's regions
        ("CH", ["en"], "ch-de"),  # none in English: the most spoken language's
        ("US", ["es"], "ue-es"),
        ("ES", ["ca"], "ct-ca"),
    ],
)
def test_duckduckgo_gets_its_own_region_codes(
    tmp_path: Path, search_api: Any, country: str, languages: list[str], kl: str
) -> None:
    filters = replace(SearchFilters.build(languages=languages), location=Location(country=country))
    settings = search_settings(tmp_path, search_api, ["duckduckgo"])
    _, report = WebRetriever(settings).search("eddystone lighthouse", filters)
    assert f"l={kl}" in search_api.requests[-1]["body"].split("&")
    assert report.location_used_by == {"duckduckgo": ["country"]}


def test_a_country_duckduckgo_has_no_region_for_is_not_reported_as_used(
    tmp_path: Path, search_api: Any
) -> None:
    settings = search_settings(tmp_path, search_api, ["duckduckgo"])
    egypt = replace(SearchFilters(), location=Location(country="EG"))
    _, report = WebRetriever(settings).search("eddystone lighthouse", egypt)
    sent = search_api.requests[-1]["body"].split("&")
    assert f"l={settings.search.duckduckgo.locale}" in sent  # the configured region, not "eg-ar"
    assert report.location_used_by == {}


@pytest.mark.parametrize("country", ["CH", "TW", "PH", "BR", "IN", "NO", "EG"])
def test_searxng_gets_a_language_code_it_accepts(tmp_path: Path, search_api: Any, country: str) -> None:
    """SearXNG answers 400 to a language outside ``[a-z]{2,3}(-[a-zA-Z]{2})?`` (searx.webadapter)."""
    located = replace(SearchFilters(), location=Location(country=country))
    assert run_provider(search_settings(tmp_path, search_api, ["searxng"]), "searxng", located)
    language = search_api.requests[-1]["query"]["language"]
    assert re.fullmatch(r"[a-z]{2,3}-[A-Z]{2}", language) and language.endswith("-" + country)


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
