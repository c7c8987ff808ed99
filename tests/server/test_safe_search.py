"""``safe_search`` (Perplexity's chat field) against a real server with the tiny model, through the
official ``perplexityai`` client and the loopback SearXNG/Tavily search API (tests/answer/loopback_web.py):
the providers that filter adult content out are told to (SearXNG's ``safesearch=2``), and those that
cannot (Tavily) are not asked, so a failover never drops the filter.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_helpers import Api, pplx

QUESTION = "Who built the Eddystone lighthouse?"


def test_safe_search_asks_only_providers_that_filter(corpus_api: Api, web: tuple[Any, Any]) -> None:
    _, search = web
    r = pplx(corpus_api).chat.completions.create(
        model="sonar-web", messages=[{"role": "user", "content": QUESTION}], max_tokens=8, safe_search=True
    )
    asked = [x["query"] for x in search.requests if x["provider"] == "searxng"]
    assert asked and all(q["safesearch"] == "2" for q in asked)
    attempts = (r.model_extra or {})["search_report"]["queries"][0]["attempts"]
    assert {"provider": "tavily", "outcome": "skipped", "kind": "no_safe_search"}.items() <= attempts[
        0
    ].items()

    search.reset()  # SearXNG down: Tavily, which cannot filter, is not asked in its place
    search.mode["searxng"] = "500"
    failed = httpx.post(
        corpus_api.base_url + "/chat/completions",
        json={"model": "sonar-web", "messages": [{"role": "user", "content": QUESTION}], "safe_search": True},
        headers=corpus_api.headers(),
        timeout=120,
    )
    assert failed.status_code == 502 and "safe_search" in failed.json()["error"]["message"], failed.text
    assert not [x for x in search.requests if x["provider"] == "tavily"]

    search.reset()  # without it, the same request fails over as before
    search.mode["searxng"] = "500"
    r = pplx(corpus_api).chat.completions.create(
        model="sonar-web", messages=[{"role": "user", "content": QUESTION}], max_tokens=8, safe_search=False
    )
    assert (r.model_extra or {})["search_report"]["providers_used"] == ["tavily"]


@pytest.mark.parametrize(
    ("model", "value", "param", "words"),
    [
        ("sonar", True, "safe_search", "searches the local index"),
        ("sonar-web", "strict", "safe_search", "valid boolean"),
    ],
)
def test_safe_search_that_cannot_be_honoured_is_named(
    corpus_api: Api, model: str, value: Any, param: str, words: str
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "safe_search": value}
    r = httpx.post(
        corpus_api.base_url + "/chat/completions", json=body, headers=corpus_api.headers(), timeout=60
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and words in r.json()["error"]["message"], r.text
