"""Perplexity's chat fields that say again what another field says are honoured as that field, through
the official ``perplexityai`` and ``openai`` clients against a real server with the tiny model and the
loopback SearXNG site (tests/answer/loopback_web.py): ``num_images`` cuts ``return_images``' list,
the top-level ``country`` / ``latitude`` / ``longitude`` are ``web_search_options.user_location``'s
parts, and ``updated_after_timestamp`` / ``updated_before_timestamp`` (Unix seconds) are the
last_updated filters of the UTC day they fall on. The loopback .html pages last changed on 2024-06-04.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from server_helpers import Api, oai, pplx

QUESTION = "Who built the Eddystone lighthouse?"
GALLERY = "Which photographs in the gallery show Smeaton's tower?"
ALL_IMAGES = ["smeaton.png", "storm.jpg", "cover.jpg", "keeper.jpg"]  # what return_images gives GALLERY
MODIFIED_DAY = "2024-06-04"


def seconds(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp())


def chat(api: Api, content: str, **fields: Any) -> httpx.Response:
    body = {"model": "sonar-web", "max_tokens": 8, "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        f"{api.base_url}/chat/completions", json={**body, **fields}, headers=api.headers(), timeout=180
    )


def names(images: list[Any]) -> list[str]:
    return [(i["image_url"] if isinstance(i, dict) else i.image_url).rsplit("/", 1)[1] for i in images]


def test_num_images_keeps_the_best_ones(corpus_api: Api, web: tuple[Any, Any]) -> None:
    r = pplx(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": GALLERY}],
        max_tokens=8,
        return_images=True,
        num_images=2,
    )
    assert names(r.images or []) == ALL_IMAGES[:2]

    # the Responses API takes chat's field, streaming too
    events = list(
        oai(corpus_api).responses.create(
            model="sonar-web",
            input=GALLERY,
            max_output_tokens=8,
            stream=True,
            extra_body={"return_images": True, "num_images": 3},
        )
    )
    assert names((events[-1].response.model_extra or {})["images"]) == ALL_IMAGES[:3]


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"return_images": True, "num_images": 0}, "num_images", "greater than or equal to 1"),
        ({"return_images": True, "num_images": 51}, "num_images", "less than or equal to 50"),
        ({"num_images": 2}, "num_images", "set return_images to true"),
    ],
)
def test_num_images_out_of_range_or_alone_is_refused(
    corpus_api: Api, fields: dict[str, Any], param: str, words: str
) -> None:
    r = chat(corpus_api, GALLERY, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text


def test_top_level_country_is_the_user_location(corpus_api: Api, web: tuple[Any, Any]) -> None:
    _, search = web
    r = pplx(corpus_api).chat.completions.create(
        model="sonar-web", messages=[{"role": "user", "content": QUESTION}], max_tokens=8, country="ch"
    )
    asked = [r["query"] for r in search.requests if r["provider"] == "searxng"]
    assert asked[0]["language"] == "de-CH"  # as web_search_options.user_location's country gives
    assert (r.model_extra or {})["search_report"]["location_used_by"] == {"searxng": ["country"]}

    # the same part given in both places, the same way, is one location
    same = chat(corpus_api, QUESTION, country="CH", web_search_options={"user_location": {"country": "ch"}})
    assert same.status_code == 200, same.text


@pytest.mark.parametrize(
    ("model", "fields", "param", "words"),
    [
        ("sonar-web", {"country": "Switzerland"}, "country", "ISO 3166"),
        (
            "sonar-web",
            {"country": "FR", "web_search_options": {"user_location": {"country": "CH"}}},
            "country",
            "give the location once",
        ),
        ("sonar-web", {"latitude": 47.37, "longitude": 8.54}, "longitude", "add country"),
        ("sonar-web", {"country": "CH", "latitude": 47.37}, "longitude", "together"),
        ("sonar-web", {"country": "CH", "latitude": 91, "longitude": 8.54}, "latitude", "less than or equal"),
        # SearXNG and Tavily take a country only: coordinates would reach no provider
        ("sonar-web", {"country": "CH", "latitude": 47.37, "longitude": 8.54}, "latitude", "brave"),
        ("sonar", {"country": "CH"}, "country", "searches the local index"),
    ],
)
def test_a_top_level_location_that_cannot_be_honoured_is_named(
    corpus_api: Api, model: str, fields: dict[str, Any], param: str, words: str
) -> None:
    r = chat(corpus_api, QUESTION, model=model, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text


def test_updated_timestamps_bound_the_day_the_page_changed(corpus_api: Api, web: tuple[Any, Any]) -> None:
    def found(**fields: Any) -> list[dict[str, Any]]:
        r = chat(corpus_api, QUESTION, **fields)
        assert r.status_code == 200, r.text
        return list(r.json()["search_results"])

    # late on the day the pages changed: that day is kept (the filters bound days)
    changed = found(
        updated_after_timestamp=seconds(2024, 6, 4, 23), updated_before_timestamp=seconds(2024, 6, 4)
    )
    assert changed and all(x["last_updated"] == MODIFIED_DAY for x in changed)  # undated pages kept out
    assert found(updated_after_timestamp=seconds(2024, 6, 5)) == []
    assert found(updated_before_timestamp=seconds(2024, 6, 3, 12)) == []
    # given twice for the same day is one filter
    again = found(updated_after_timestamp=seconds(2024, 6, 1, 9), last_updated_after_filter="6/1/2024")
    assert {x["url"] for x in again} == {x["url"] for x in changed}

    # the perplexityai client sends them as they are typed
    r = pplx(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        updated_after_timestamp=seconds(2024, 6, 1),
    )
    assert r.search_results and all(x.last_updated == MODIFIED_DAY for x in r.search_results)


@pytest.mark.parametrize(
    ("model", "fields", "param", "words"),
    [
        (
            "sonar-web",
            {"updated_after_timestamp": seconds(2024, 6, 1), "last_updated_after_filter": "6/2/2024"},
            "updated_after_timestamp",
            "give one of the two",
        ),
        (
            "sonar-web",
            {"updated_before_timestamp": seconds(2024, 6, 1) * 1000},
            "updated_before_timestamp",
            "milliseconds",
        ),
        (
            "sonar-web",
            {"updated_after_timestamp": -1},
            "updated_after_timestamp",
            "greater than or equal to 0",
        ),
    ],
)
def test_bad_or_unusable_timestamps_are_named(
    corpus_api: Api, model: str, fields: dict[str, Any], param: str, words: str
) -> None:
    r = chat(corpus_api, QUESTION, model=model, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text
