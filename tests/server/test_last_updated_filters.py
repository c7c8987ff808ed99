"""``last_updated_after_filter`` / ``last_updated_before_filter`` bound the day a page last changed, not
its publication date (``search_*_date_filter``), against a real server with the tiny model, through the
official clients. The loopback site's .html pages send ``Last-Modified: Tue, 04 Jun 2024``; its .txt and
.pdf files say nothing of when they changed, so these filters keep them out. ``/lighthouses.html`` was
published on 2024-05-10, before it last changed: the one page that tells the two dates apart.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from loopback_web import LAST_MODIFIED
from server_helpers import Api, oai, pplx

QUESTION = "Who built the Eddystone lighthouse?"
MODIFIED_DAY = "2024-06-04"
LIGHTHOUSES = "/lighthouses.html"  # published 2024-05-10, last changed 2024-06-04


def results(api: Api, **filters: Any) -> list[dict[str, Any]]:
    r = oai(api).chat.completions.create(
        model="sonar-web",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        extra_body=filters,
    )
    return list((r.model_extra or {})["search_results"])


def paths(found: list[dict[str, Any]], base: str) -> set[str]:
    return {x["url"].removeprefix(base) for x in found}


def test_chat_filters_on_the_day_the_page_changed(corpus_api: Api, web: tuple[Any, Any]) -> None:
    site, _ = web
    assert LAST_MODIFIED.startswith("Tue, 04 Jun 2024")
    changed = results(
        corpus_api, last_updated_after_filter="6/1/2024", last_updated_before_filter="2024-06-04"
    )
    assert changed and all(x["last_updated"] == MODIFIED_DAY for x in changed)  # undated ones kept out
    assert LIGHTHOUSES in paths(changed, site.base_url)

    assert results(corpus_api, last_updated_after_filter="6/5/2024") == []  # every page changed before

    # the publication date is another fact: /lighthouses.html was published in May and changed in June
    published_in_may = results(corpus_api, search_before_date_filter="5/31/2024")
    assert LIGHTHOUSES in paths(published_in_may, site.base_url)
    changed_in_may = results(corpus_api, last_updated_before_filter="5/31/2024")
    assert changed_in_may == []

    # the Responses API's web_search tool takes the same filters
    r = oai(corpus_api).responses.create(
        model="sonar-web",
        input=QUESTION,
        max_output_tokens=8,
        tools=[{"type": "web_search", "filters": {"last_updated_after_filter": "6/1/2024"}}],  # type: ignore[typeddict-unknown-key]
    )
    found = (r.model_extra or {})["search_results"]
    assert found and all(x["last_updated"] == MODIFIED_DAY for x in found)


def test_search_reads_the_pages_to_filter_them(corpus_api: Api, web: tuple[Any, Any]) -> None:
    plain = pplx(corpus_api).search.create(query="eddystone lighthouse keepers", max_results=10)
    assert all(h.last_updated is None for h in plain.results)  # not read: nothing known
    assert any(not h.url.endswith(".html") for h in plain.results)
    hits = pplx(corpus_api).search.create(
        query="eddystone lighthouse keepers", max_results=10, last_updated_after_filter="6/1/2024"
    )
    assert hits.results and all(h.url.endswith(".html") for h in hits.results)
    assert all(h.last_updated == MODIFIED_DAY for h in hits.results)  # read, so now known
    assert [h.url for h in hits.results] == [h.url for h in plain.results if h.url.endswith(".html")]
    none = pplx(corpus_api).search.create(
        query="eddystone lighthouse keepers", last_updated_before_filter="1/1/2024"
    )
    assert none.results == []


@pytest.mark.parametrize(
    ("path", "body", "param", "words"),
    [
        (
            "/chat/completions",
            {
                "model": "sonar-web",
                "messages": [{"role": "user", "content": QUESTION}],
                "last_updated_after_filter": "6/5/2024",
                "last_updated_before_filter": "6/1/2024",
            },
            "last_updated_after_filter",
            "later than last_updated_before_filter",
        ),
        (
            "/chat/completions",
            {
                "model": "sonar-web",
                "messages": [{"role": "user", "content": QUESTION}],
                "last_updated_after_filter": "June",
            },
            "last_updated_after_filter",
            "is not a date",
        ),
    ],
)
def test_a_last_updated_filter_that_cannot_be_honoured_is_a_400(
    corpus_api: Api, path: str, body: dict[str, Any], param: str, words: str
) -> None:
    r = httpx.post(corpus_api.base_url + path, json=body, headers=corpus_api.headers(), timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_search_on_a_server_that_searches_only_the_index_judges_its_documents(api: Api) -> None:
    """/search served by the ``local`` provider: the index's documents here were added as text, with
    no day they changed (tests/answer/test_index_last_updated.py has dated files), so the filter keeps
    them all out where it was once a 400."""
    plain = pplx(api).search.create(query="Eiffel Tower")
    assert plain.results and all(h.last_updated is None for h in plain.results)
    assert pplx(api).search.create(query="Eiffel Tower", last_updated_after_filter="1/1/2024").results == []
