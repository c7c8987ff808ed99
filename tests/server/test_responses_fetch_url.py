"""The Responses API's ``fetch_url`` tool, through the official ``openai`` client against a real server
with the tiny model: the pages the question links are read under the reader's address checks (the
corpus_api fixture allows 127.0.0.1 only, where the loopback site is: tests/answer/loopback_web.py),
listed in a ``fetch_url_results`` output item, and offered to the answer as sources.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_helpers import Api, oai


def ask(site: Any, extra: str = "") -> str:
    return f"What is a Fresnel lens? See {site.base_url}/lens.html{extra}"


def test_the_linked_pages_are_read_and_answer_from(corpus_api: Api, web: tuple[Any, Any]) -> None:
    site, _ = web
    tools = [{"type": "web_search"}, {"type": "fetch_url", "max_urls": 2}]
    r = oai(corpus_api).responses.create(
        model="sonar-web",
        input=ask(site, " and http://10.1.2.3/private.html, or " + site.base_url + "/tides.html"),
        max_output_tokens=8,
        tools=tools,  # type: ignore[arg-type]
    )
    first = r.output[0].model_dump()
    assert first["type"] == "fetch_url_results"
    lens, private = first["contents"]  # max_urls 2: the third URL is not read
    assert (lens["url"], lens["title"]) == (site.base_url + "/lens.html", "Fresnel lens")
    assert "Fresnel" in lens["snippet"] and "error" not in lens
    assert private["url"] == "http://10.1.2.3/private.html" and "10.1.2.3" in private["error"], private
    found = [x["url"] for x in (r.model_extra or {})["search_results"]]
    assert site.base_url + "/lens.html" in found  # the page read is a source of the answer

    events = list(
        oai(corpus_api).responses.create(
            model="sonar-web",
            input=ask(site),
            max_output_tokens=8,
            stream=True,
            tools=tools,  # type: ignore[arg-type]
        )
    )
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.output_index == 0 and added.item.type == "fetch_url_results"
    final = events[-1].response
    assert final.output[0].type == "fetch_url_results" and final.output[-1].type == "message"


@pytest.mark.parametrize(
    ("tools", "param", "words"),
    [
        ([{"type": "fetch_url"}], "tools", "beside a web search"),
        ([{"type": "web_search"}, {"type": "fetch_url", "max_urls": 0}], "tools.1.max_urls", "greater than"),
        ([{"type": "web_search"}, {"type": "fetch_url"}, {"type": "fetch_url"}], "tools", "at most one"),
    ],
)
def test_fetch_url_requests_that_cannot_run_are_named(
    corpus_api: Api, tools: list[dict[str, Any]], param: str, words: str
) -> None:
    body = {"model": "sonar-web", "input": "What is at https://example.org/?", "tools": tools}
    r = httpx.post(corpus_api.base_url + "/v1/responses", json=body, headers=corpus_api.headers(), timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text
