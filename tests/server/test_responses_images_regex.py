"""The Responses API (``/v1/responses``) honours chat's ``return_images`` (with its filters) and the
regex output format, through the official ``openai`` client, plain and streaming, against a real
server with the tiny model: ``sonar-web`` searches the loopback SearXNG site whose /gallery.html shows
images (tests/answer/loopback_web.py); the regex tests ask ``sonar`` of the ``api`` fixture, whose
local index knows the Eiffel Tower.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest
from server_helpers import Api, oai

GALLERY = "Which photographs in the gallery show Smeaton's tower?"
QUESTION = "When was the Eiffel Tower completed?"
YEAR = r"(18|19)\d{2}"
ALL_IMAGES = ["smeaton.png", "storm.jpg", "cover.jpg", "keeper.jpg"]  # what chat returns for GALLERY


def names(images: list[dict[str, Any]]) -> list[str]:
    return [i["image_url"].rsplit("/", 1)[1] for i in images]


def test_return_images_plain_and_streaming(corpus_api: Api, web: tuple[Any, Any]) -> None:
    site, _ = web
    client = oai(corpus_api)
    r = client.responses.create(
        model="sonar-web", input=GALLERY, max_output_tokens=8, extra_body={"return_images": True}
    )
    extra = r.model_extra or {}
    images = extra["images"]
    assert names(images) == ALL_IMAGES  # ranked as chat ranks them
    assert images[0] == {
        "image_url": site.base_url + "/photos/smeaton.png",
        "origin_url": site.base_url + "/gallery.html",
        "title": "Smeaton's Tower",
        "width": 120,
        "height": 80,
    }
    assert "images" not in extra["search_report"] and extra["search_report"]["queries"]
    assert r.output[0].type == "web_search_call"  # the search that found them

    events = list(
        client.responses.create(
            model="sonar-web",
            input=GALLERY,
            max_output_tokens=8,
            stream=True,
            extra_body={"return_images": True, "image_format_filter": ["jpg"]},
        )
    )
    assert events[-1].type in ("response.completed", "response.incomplete")  # 8 tokens may cut it
    streamed = events[-1].response.model_extra or {}
    assert names(streamed["images"]) == ["storm.jpg", "cover.jpg", "keeper.jpg"]

    stored = httpx.get(  # the stored response keeps them
        f"{corpus_api.base_url}/v1/responses/{events[-1].response.id}", headers=corpus_api.headers()
    ).json()
    assert names(stored["images"]) == ["storm.jpg", "cover.jpg", "keeper.jpg"]

    # the agent path, with the domain filter and without images when not asked for
    body = {"model": "sonar-web", "input": GALLERY, "max_output_tokens": 8}
    url = f"{corpus_api.base_url}/v1/agent"
    kept_out = httpx.post(
        url,
        json={**body, "return_images": True, "image_domain_filter": ["-127.0.0.1"]},
        headers=corpus_api.headers(),
        timeout=180,
    ).json()
    assert kept_out["images"] == []
    plain = httpx.post(url, json=body, headers=corpus_api.headers(), timeout=180).json()
    assert "images" not in plain and plain["object"] == "response"


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"model": "sonar", "return_images": True}, "return_images", "searches the local index"),
        ({"return_images": True, "tools": []}, "return_images", "answers without searching"),
        ({"image_format_filter": ["png"]}, "image_format_filter", "set return_images to true"),
        (
            {"return_images": True, "image_format_filter": ["bmpx"]},
            "image_format_filter",
            "not an image format",
        ),
        ({"return_images": "yes please"}, "return_images", "boolean"),
    ],
)
def test_image_requests_that_cannot_be_honoured_are_refused(
    corpus_api: Api, fields: dict[str, Any], param: str, words: str
) -> None:
    body = {"model": "sonar-web", "input": GALLERY, **fields}
    r = httpx.post(f"{corpus_api.base_url}/v1/responses", json=body, headers=corpus_api.headers(), timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_a_regex_format_is_matched_by_the_whole_output_text(api: Api) -> None:
    client = oai(api)
    r = client.responses.create(
        model="sonar",
        input=QUESTION,
        max_output_tokens=16,
        temperature=0,
        text={"format": {"type": "regex", "regex": YEAR}},  # type: ignore[typeddict-item]
    )
    assert re.fullmatch(YEAR, r.output_text), r.output_text  # the string itself, not JSON
    assert r.text is not None and (r.text.format.model_extra or {}).get("regex") == YEAR  # echoed

    events = list(
        client.responses.create(
            model="sonar",
            input=QUESTION,
            max_output_tokens=16,
            stream=True,
            extra_body={"response_format": {"type": "regex", "regex": {"regex": "^" + YEAR + "$"}}},
        )
    )
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert re.fullmatch(YEAR, deltas), deltas
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == deltas == events[-1].response.output_text


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        (
            {"text": {"format": {"type": "regex", "regex": "(?=1)[0-9]{4}"}}},
            "text.format.regex",
            "cannot be honoured",
        ),
        (
            {"response_format": {"type": "regex", "regex": {"regex": "(18"}}},
            "response_format.regex.regex",
            "the regex is invalid",
        ),
        ({"text": {"format": {"type": "regex"}}}, "text.format.regex.regex", "missing"),
        (
            {"response_format": {"type": "regex", "regex": {"regex": "a"}, "json_schema": {"schema": {}}}},
            "response_format",
            "takes no json_schema",
        ),
    ],
)
def test_a_regex_that_cannot_be_honoured_is_a_400_naming_it(
    api: Api, fields: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai(api).responses.create(model="sonar", input=QUESTION, max_output_tokens=8, extra_body=fields)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param and words in body["message"], body
