"""Perplexity's and OpenAI's request fields that this server does not implement are refused with a 400
naming them (at their neutral value they pass), through the official clients against a real server
with the tiny model; ``search_language_filter``, which chat once dropped as an extra, is honoured on a
web search (the loopback site has one German page) and refused on the local index.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import perplexity
import pytest
from server_helpers import Api, oai, pplx

QUESTION = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]


def test_the_clients_get_a_400_naming_the_field(api: Api) -> None:
    with pytest.raises(perplexity.BadRequestError) as info:
        pplx(api).chat.completions.create(model="sonar", messages=QUESTION, frequency_penalty=0.5)
    error = info.value.body["error"] if isinstance(info.value.body, dict) else {}
    assert error["param"] == "frequency_penalty" and error["code"] == "unsupported_parameter"
    assert "refuses it rather than ignore it" in error["message"]

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as oinfo:
        oai(api).chat.completions.create(model="sonar", messages=QUESTION, tools=[tool])  # type: ignore[list-item]
    assert isinstance(oinfo.value.body, dict) and oinfo.value.body["param"] == "tools"
    assert "no function calling" in oinfo.value.body["message"]

    # the neutral values some clients always send change nothing and pass
    r = oai(api).chat.completions.create(
        model="sonar",
        messages=QUESTION,
        max_tokens=4,
        presence_penalty=0,
        frequency_penalty=0,
        logprobs=False,
    )
    assert r.choices[0].message.content is not None

    # the async API validates the same request
    with pytest.raises(perplexity.BadRequestError) as ainfo:
        pplx(api).async_.chat.completions.create(
            request={"model": "sonar", "messages": QUESTION, "num_search_results": 5}  # type: ignore[typeddict-item]
        )
    body = ainfo.value.body
    error = body["error"] if isinstance(body, dict) else {}
    assert error["param"] == "request.num_search_results" and "search_context_size" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/chat/completions",
            {"messages": [*QUESTION, {"role": "tool", "content": "42"}]},
            "messages.1.role",
        ),
        ("/chat/completions", {"messages": QUESTION, "best_of": 3}, "best_of"),
        (
            "/chat/completions",
            {"messages": QUESTION, "search_language_filter": ["fr"]},
            "search_language_filter",
        ),
        ("/search", {"query": "Eiffel Tower", "search_type": "people"}, "search_type"),
        ("/v1/responses", {"input": "Eiffel Tower", "background": True}, "background"),
    ],
)
def test_fields_that_cannot_be_honoured_are_named(
    api: Api, path: str, body: dict[str, Any], param: str
) -> None:
    r = httpx.post(api.base_url + path, json={"model": "sonar", **body}, headers=api.headers(), timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


def test_search_language_filter_keeps_the_pages_in_those_languages(
    corpus_api: Api, web: tuple[Any, Any]
) -> None:
    site, _ = web
    r = oai(corpus_api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": "Which lighthouse stands at Roter Sand?"}],
        max_tokens=8,
        extra_body={"search_language_filter": ["de"]},
    )
    found = (r.model_extra or {})["search_results"]
    assert {x["url"].removeprefix(site.base_url) for x in found} == {"/leuchtturm.html"}
