"""Perplexity's newer chat fields against a real server: the search classifier, ``search_type`` and
``stream_mode: "concise"`` are honoured; ``return_images`` and ``user_location`` on a model that searches
the local index are refused naming the field, never accepted and ignored (the web's are in
test_sources_location_images.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from server_helpers import Api

EIFFEL = "https://en.wikipedia.org/wiki/Eiffel_Tower"


def chat(api: Api, content: str, **fields: Any) -> httpx.Response:
    body = {"model": "sonar", "max_tokens": 8, "messages": [{"role": "user", "content": content}], **fields}
    return httpx.post(f"{api.base_url}/chat/completions", json=body, headers=api.headers(), timeout=180)


def test_the_search_classifier_skips_the_search_only_where_none_is_needed(api: Api) -> None:
    hi = chat(api, "Hello there!", enable_search_classifier=True)
    assert hi.status_code == 200, hi.text
    assert hi.json()["usage"]["num_search_queries"] == 0 and hi.json()["citations"] == []
    assert not hi.json()["declined"]  # answered, not "could not find this in the sources"
    # the classifier off: searched as before (and the values that ask for nothing new pass)
    without = chat(api, "Hello there!", return_images=False, stream_mode="full")
    assert without.json()["usage"]["num_search_queries"] == 1
    fact = chat(api, "When was the Eiffel Tower completed?", enable_search_classifier=True)
    assert fact.json()["usage"]["num_search_queries"] == 1 and EIFFEL in fact.json()["citations"]
    auto = chat(api, "What is 12 times 7?", search_type="auto")  # auto: the classifier decides
    assert auto.json()["usage"]["num_search_queries"] == 0


def test_search_type_sets_the_effort(api: Api) -> None:
    pro = chat(api, "Who designed the Eiffel Tower, and when was it completed?", search_type="pro")
    assert pro.status_code == 200, pro.text
    assert pro.json()["reasoning"]["effort"] == "medium" and pro.json()["reasoning"]["steps"]
    conflict = chat(api, "When was the Eiffel Tower completed?", search_type="fast", reasoning_effort="high")
    assert conflict.status_code == 400 and "give one of the two" in conflict.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        # sonar searches the local index: no images to return, no provider to give a location to
        ({"return_images": True}, "return_images", "searches the local index"),
        ({"image_domain_filter": ["example.com"]}, "image_domain_filter", "set return_images to true"),
        (
            {"web_search_options": {"user_location": {"country": "FR"}}},
            "web_search_options.user_location",
            "searches the local index",
        ),
        ({"search_type": "deep"}, "search_type", "'fast', 'pro' or 'auto'"),
    ],
)
def test_fields_that_cannot_be_honoured_are_refused(
    api: Api, fields: dict[str, Any], param: str, words: str
) -> None:
    r = chat(api, "When was the Eiffel Tower completed?", **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"]


def test_concise_stream_sends_the_answer_then_one_done_chunk(api: Api) -> None:
    body = {
        "model": "sonar",
        "max_tokens": 8,
        "stream": True,
        "stream_mode": "concise",
        "messages": [{"role": "user", "content": "When was the Eiffel Tower completed?"}],
    }
    with httpx.stream(
        "POST", f"{api.base_url}/chat/completions", json=body, headers=api.headers(), timeout=180
    ) as r:
        assert r.status_code == 200
        data = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    *text, last = chunks
    assert text and all(c["object"] == "chat.completion.chunk" for c in text)
    assert all(set(c) == {"id", "object", "created", "model", "choices"} for c in text)  # deltas only
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in text).strip()
    assert last["object"] == "chat.completion.done" and last["choices"][0]["finish_reason"]
    assert EIFFEL in last["citations"] and last["search_results"] and last["usage"]["num_search_queries"] == 1
