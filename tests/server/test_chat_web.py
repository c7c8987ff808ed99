"""Web search through the API: a preset with ``source = "web"`` answers from a real search API (SearXNG's
and Tavily's wire formats) and a real web site, both on 127.0.0.1, through the official openai client
against a real `groundglass serve`. Failover is reported, ``search_mode`` narrows the domains, and
a search with no provider answering is a 502 naming the problem.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from server_helpers import Api, ledger_rows, oai

QUESTION = "Who built the Eddystone lighthouse?"


def ask(**kw: Any) -> dict[str, Any]:
    return {
        "model": "sonar-web",
        "max_tokens": 24,
        "temperature": 0,
        "messages": [{"role": "user", "content": QUESTION}],
        **kw,
    }


def test_web_preset_answers_from_the_web_and_reports_failover(corpus_api: Api, web: tuple[Any, Any]) -> None:
    site, search = web
    search.mode["searxng"] = "500"  # the first provider fails: Tavily answers
    r = oai(corpus_api).chat.completions.create(**ask())
    extra = r.model_extra or {}
    assert extra["citations"] and all(url.startswith(site.base_url) for url in extra["citations"])
    assert extra["search_results"][0]["url"] == site.base_url + "/lighthouses.html"
    assert site.hits["/lighthouses.html"] == 1  # the page was read by the server
    report = extra["search_report"]
    assert report["providers_used"] == ["tavily"] and report["providers_failed"] == ["searxng"]
    assert report["context_size"] == "low" and search.hits["searxng"] == 1 and search.hits["tavily"] == 1
    u = r.usage.model_dump()
    assert u["num_search_queries"] == len(report["queries"]) == 1 and u["search_context_size"] == "low"
    assert "visual_facts" not in extra
    row = ledger_rows(corpus_api.home, request_id=r.id)[0]
    assert (row["status"], row["model"], row["num_search_queries"]) == (200, "sonar-web", 1)
    models = {m.id: m.model_extra or {} for m in oai(corpus_api).models.list()}
    assert models["sonar-web"]["source"] == "web" and models["sonar"]["source"] == "index"


def test_streamed_web_answer_with_context_size_and_academic_mode(
    corpus_api: Api, web: tuple[Any, Any]
) -> None:
    site, search = web
    stream = oai(corpus_api).chat.completions.create(
        **ask(stream=True),
        web_search_options={"search_context_size": "medium"},
        extra_body={"search_mode": "academic"},  # academic is configured to allow 127.0.0.1 here
    )
    chunks = list(stream)
    first, last = chunks[0].model_extra or {}, chunks[-1].model_extra or {}
    assert chunks[0].choices[0].delta.role == "assistant"
    found = first["search_results"]
    assert found and all(x["url"].startswith(site.base_url) for x in found)
    report = last["search_report"]
    assert report["providers_used"] == ["searxng"] and report["providers_failed"] == []
    assert report["context_size"] == "medium"  # web_search_options.search_context_size reached the search
    assert search.hits["tavily"] == 0
    assert last["citations"] == [x["url"] for x in last["search_results"]]
    assert chunks[-1].usage is not None
    u = chunks[-1].usage.model_dump()
    assert u["search_context_size"] == "medium" and u["num_search_queries"] == 1


def test_search_mode_narrows_the_domains_and_disable_search_searches_nothing(
    corpus_api: Api, web: tuple[Any, Any]
) -> None:
    _, search = web
    # sec allows sec.gov only: every loopback result is filtered out, so the answer declines
    r = httpx.post(
        corpus_api.base_url + "/chat/completions",
        headers=corpus_api.headers(),
        timeout=180,
        json=ask(search_mode="sec"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["citations"] == [] and body["declined"] is True
    failures = [f for q in body["search_report"]["queries"] for f in q["failures"]]
    assert failures and {f["kind"] for f in failures} == {"filtered"}
    assert body["usage"]["num_search_queries"] == 1
    # a domain filter outside the mode's domains, and an unknown mode, are 400s naming the parameter
    for payload, param, words in [
        (
            ask(search_mode="sec", search_domain_filter=["example.com"]),
            "search_domain_filter",
            "none of which search_mode 'sec' searches (sec.gov)",
        ),
        (ask(search_mode="news"), "search_mode", "'web', 'academic' or 'sec'"),
    ]:
        r = httpx.post(
            corpus_api.base_url + "/chat/completions", headers=corpus_api.headers(), timeout=60, json=payload
        )
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["param"] == param and words in err["message"], err
    # disable_search: no provider is asked, and no query is billed
    r = httpx.post(
        corpus_api.base_url + "/chat/completions",
        headers=corpus_api.headers(),
        timeout=180,
        json=ask(disable_search=True, max_tokens=8),
    )
    assert r.status_code == 200 and r.json()["usage"]["num_search_queries"] == 0, r.text
    assert "search_report" not in r.json() and r.json()["citations"] == []
    assert search.hits["searxng"] == 1 and search.hits["tavily"] == 0  # the sec request's search only


def test_no_provider_answering_is_a_502(corpus_api: Api, web: tuple[Any, Any]) -> None:
    _, search = web
    search.mode.update(searxng="503", tavily="malformed")
    with pytest.raises(openai.APIStatusError) as info:
        oai(corpus_api).chat.completions.create(**ask())
    assert info.value.status_code == 502 and info.value.code == "search_failed"
    assert "the web search failed: no search provider answered" in info.value.message
    assert "configure a search provider" in info.value.message
    # streaming too: the failure comes before the first chunk, so it is the response's status
    with pytest.raises(openai.APIStatusError) as info:
        list(oai(corpus_api).chat.completions.create(**ask(stream=True)))
    assert info.value.status_code == 502 and info.value.code == "search_failed"
    assert search.hits["searxng"] == 2 and search.hits["tavily"] == 2
    rows = ledger_rows(corpus_api.home, model="sonar-web", status=502)
    assert len(rows) == 2
    # the Search API names the same event with the same code
    r = httpx.post(
        corpus_api.base_url + "/search",
        json={"query": QUESTION},
        headers={"Authorization": f"Bearer {corpus_api.key}"},
        timeout=60,
    )
    assert r.status_code == 502 and r.json()["error"]["code"] == "search_failed", r.text
    assert "no search provider answered" in r.json()["error"]["message"]
