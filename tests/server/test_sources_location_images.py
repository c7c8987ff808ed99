"""Perplexity's newer source fields against a real server on 127.0.0.1, through the official ``openai``
and ``perplexityai`` clients: ``search_results[].source`` and ``last_updated``, ``user_location``
passed to the providers that take it, ``return_images`` with its filters, and ``/search``'s
``country`` and ``max_tokens``. The web is the loopback site and search API (tests/answer/loopback_web.py):
its .html pages send a Last-Modified header, its other files do not, and /gallery.html shows images.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from loopback_web import LAST_MODIFIED
from server_helpers import Api, oai, pplx

QUESTION = "Who built the Eddystone lighthouse?"
GALLERY = "Which photographs in the gallery show Smeaton's tower?"
MODIFIED_DAY = "2024-06-04"  # LAST_MODIFIED's day


def chat(api: Api, content: str, **fields: Any) -> httpx.Response:
    body = {
        "model": "sonar-web",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": content}],
        **fields,
    }
    return httpx.post(f"{api.base_url}/chat/completions", json=body, headers=api.headers(), timeout=180)


def sent(search: Any, provider: str) -> list[dict[str, Any]]:
    """What each request to ``provider`` asked: its query parameters, or its JSON body."""
    return [r["query"] or json.loads(r["body"]) for r in search.requests if r["provider"] == provider]


def test_search_results_say_where_they_came_from_and_when_the_page_changed(
    corpus_api: Api, web: tuple[Any, Any]
) -> None:
    site, _ = web
    assert LAST_MODIFIED.startswith("Tue, 04 Jun 2024")
    r = oai(corpus_api).chat.completions.create(
        model="sonar-web", messages=[{"role": "user", "content": QUESTION}], max_tokens=16, temperature=0
    )
    results = (r.model_extra or {})["search_results"]
    assert results and {x["source"] for x in results} == {"web"}
    for x in results:  # the header's day for the pages that send one, nothing invented for the others
        assert x["last_updated"] == (MODIFIED_DAY if x["url"].endswith(".html") else None), x
    lighthouses = next(x for x in results if x["url"] == site.base_url + "/lighthouses.html")
    assert lighthouses["date"] == "2024-05-10"  # published: a different fact from last_updated

    # the Responses API lists the same fields
    resp = oai(corpus_api).responses.create(model="sonar-web", input=QUESTION, max_output_tokens=16)
    assert {(x["source"], x["last_updated"]) for x in (resp.model_extra or {})["search_results"]} <= {
        ("web", MODIFIED_DAY),
        ("web", None),
    }
    # the local index: source index, and no last_updated (its documents do not say)
    local = oai(corpus_api).chat.completions.create(
        model="sonar",
        messages=[{"role": "user", "content": "How do I fix ModuleNotFoundError?"}],
        max_tokens=8,
    )
    found = (local.model_extra or {})["search_results"]
    assert found and all(x["source"] == "index" and x["last_updated"] is None for x in found)
    # /search: provider results, not read, so no last_updated
    hits = pplx(corpus_api).search.create(query="eddystone lighthouse", max_results=5)
    assert hits.results and all(
        (h.model_extra or {})["source"] == "web" and h.last_updated is None for h in hits.results
    )


def test_user_location_reaches_the_providers_that_take_it(corpus_api: Api, web: tuple[Any, Any]) -> None:
    _, search = web
    r = oai(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        web_search_options={"user_location": {"country": "ch"}},  # type: ignore[typeddict-unknown-key]
    )
    assert sent(search, "searxng")[0]["language"] == "de-CH"  # the country's most spoken language
    assert (r.model_extra or {})["search_report"]["location_used_by"] == {"searxng": ["country"]}

    search.reset()
    search.mode["searxng"] = "500"  # failover: Tavily takes the country by its name
    r = oai(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        web_search_options={"user_location": {"country": "CH"}},  # type: ignore[typeddict-unknown-key]
    )
    assert sent(search, "tavily")[0]["country"] == "switzerland"
    report = (r.model_extra or {})["search_report"]
    assert report["location_used_by"] == {"tavily": ["country"]}
    assert report["queries"][0]["attempts"][0]["location"] == ["country"]  # searxng was given it too

    search.reset()  # OpenAI's shape, through the Responses API's web_search tool
    oai(corpus_api).responses.create(
        model="sonar-web",
        input=QUESTION,
        max_output_tokens=8,
        tools=[{"type": "web_search", "user_location": {"type": "approximate", "country": "FR"}}],
    )
    assert sent(search, "searxng")[0]["language"] == "fr-FR"

    search.reset()  # the Search API's country
    pplx(corpus_api).search.create(query="eddystone lighthouse", country="DE")
    assert sent(search, "searxng")[0]["language"] == "de-DE"


@pytest.mark.parametrize(
    ("model", "location", "param", "words"),
    [
        ("sonar-web", {"country": "CH", "city": "Zurich"}, "web_search_options.user_location.city", "brave"),
        ("sonar-web", {"latitude": 47.4}, "web_search_options.user_location", "latitude and longitude"),
        ("sonar-web", {"country": "Switzerland"}, "web_search_options.user_location.country", "ISO 3166"),
        ("sonar-web", {"country": "CH", "zip": "8001"}, "web_search_options.user_location.zip", "unknown"),
        ("sonar", {"country": "CH"}, "web_search_options.user_location", "searches the local index"),
    ],
)
def test_a_location_nothing_would_use_is_refused(
    corpus_api: Api, model: str, location: dict[str, Any], param: str, words: str
) -> None:
    r = chat(corpus_api, QUESTION, model=model, web_search_options={"user_location": location})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"]


def test_search_max_tokens_caps_the_snippets_together(corpus_api: Api, web: tuple[Any, Any]) -> None:
    full = pplx(corpus_api).search.create(query="eddystone lighthouse keepers", max_results=5)
    capped = pplx(corpus_api).search.create(
        query="eddystone lighthouse keepers", max_results=5, max_tokens=20
    )
    assert [h.url for h in capped.results] == [h.url for h in full.results]  # the same results
    assert sum(len(h.snippet) for h in full.results) > 80
    assert sum(len(h.snippet) for h in capped.results) == 80  # 20 tokens of 4 characters
    assert capped.results[0].snippet == full.results[0].snippet[:80]


def test_return_images_gives_the_pages_images_ranked_measured_and_filtered(
    corpus_api: Api, web: tuple[Any, Any]
) -> None:
    site, _ = web
    r = pplx(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": GALLERY}],
        max_tokens=8,
        return_images=True,
    )
    images = (r.model_extra or {}).get("images") or [i.model_dump() for i in r.images or []]
    page = site.base_url + "/gallery.html"
    assert [(i["image_url"].removeprefix(site.base_url), i["width"], i["height"]) for i in images] == [
        ("/photos/smeaton.png", 120, 80),  # named by the question, and measured: the page gave no size
        ("/photos/storm.jpg", 640, 427),  # SearXNG's image result, sized by its resolution
        ("/photos/cover.jpg", 1200, 630),  # the page's og:image, sized by its og:image:width/height
        ("/photos/keeper.jpg", 640, 480),
    ]  # not: the 1x1 pixel, the private addresses, the HTML served as .png, the data: URI
    assert all(i["origin_url"] == page for i in images)
    assert images[0]["title"] == "Smeaton's Tower" and images[2]["title"] == "The coast near Plymouth at dusk"
    assert site.hits["/photos/smeaton.png"] == 1  # fetched to measure it; the others were not fetched
    assert site.hits["/photos/cover.jpg"] == site.hits["/photos/storm.jpg"] == 0
    assert "images" not in (r.model_extra or {})["search_report"]

    only_png = chat(corpus_api, GALLERY, return_images=True, image_format_filter=["png"]).json()
    assert [i["image_url"] for i in only_png["images"]] == [site.base_url + "/photos/smeaton.png"]
    none_here = chat(corpus_api, GALLERY, return_images=True, image_domain_filter=["-127.0.0.1"]).json()
    assert none_here["images"] == []
    stream = oai(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": GALLERY}],
        max_tokens=8,
        stream=True,
        extra_body={"return_images": True, "image_format_filter": ["jpg"]},
    )
    last = list(stream)[-1].model_extra or {}
    names = [i["image_url"].rsplit("/", 1)[1] for i in last["images"]]
    assert names == ["storm.jpg", "cover.jpg", "keeper.jpg"]
    plain = chat(corpus_api, GALLERY).json()
    assert "images" not in plain  # only when asked for


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"model": "sonar", "return_images": True}, "return_images", "searches the local index"),
        ({"image_format_filter": ["png"]}, "image_format_filter", "set return_images to true"),
        (
            {"return_images": True, "image_format_filter": ["bmpx"]},
            "image_format_filter",
            "not an image format",
        ),
    ],
)
def test_image_requests_that_cannot_be_honoured_are_refused(
    corpus_api: Api, fields: dict[str, Any], param: str, words: str
) -> None:
    r = chat(corpus_api, GALLERY, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"]


def test_async_requests_get_images_and_located_sources_too(corpus_api: Api, web: tuple[Any, Any]) -> None:
    """The async API (Perplexity's client, /v1/async/sonar) runs the same request through the job worker."""
    _, search = web
    client = pplx(corpus_api)
    request = {
        "model": "sonar-web",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": GALLERY}],
        "return_images": True,
        "web_search_options": {"user_location": {"country": "FR"}},
    }
    job = client.async_.chat.completions.create(request=request)
    deadline = time.monotonic() + 180
    while job.status not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = client.async_.chat.completions.get(job.id)
    assert job.status == "COMPLETED", job
    assert job.response is not None
    response = job.response.model_dump()  # the client keeps the fields its types do not name too
    names = [i["image_url"].rsplit("/", 1)[1] for i in response["images"]]
    assert names == ["smeaton.png", "storm.jpg", "cover.jpg", "keeper.jpg"]
    assert {x["source"] for x in response["search_results"]} == {"web"}
    assert sent(search, "searxng")[0]["language"] == "fr-FR"
    assert response["search_report"]["location_used_by"] == {"searxng": ["country"]}
